//! Command-line options of the subcommands: `--flag`, `--flag VALUE` and
//! `--flag=VALUE`, read in order, stopping at `--` or the first argument
//! that is not an option (the command of `rmcp run`).

pub struct Flags<'a> {
    args: &'a [String],
    pos: usize,
    inline: Option<&'a str>,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [String]) -> Flags<'a> {
        Flags {
            args,
            pos: 0,
            inline: None,
        }
    }

    /// The next option (without any `=VALUE`), or None at the end, at `--`
    /// (consumed) or at a non-option argument (left in `rest`).
    pub fn next_flag(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.pos)?.as_str();
        if a == "--" {
            self.pos += 1;
            return None;
        }
        if !a.starts_with('-') || a == "-" {
            return None;
        }
        self.pos += 1;
        match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => {
                self.inline = Some(v);
                Some(f)
            }
            _ => {
                self.inline = None;
                Some(a)
            }
        }
    }

    /// True when the current option was written `--flag=VALUE`.
    pub fn has_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// The value of the current option: its `=VALUE`, else the next argument.
    pub fn value(&mut self, context: &str, name: &str) -> Result<String, String> {
        if let Some(v) = self.inline.take() {
            return Ok(v.to_string());
        }
        let v = self
            .args
            .get(self.pos)
            .ok_or_else(|| format!("{context}{name} needs a value"))?;
        self.pos += 1;
        Ok(v.clone())
    }

    /// The arguments not read as options.
    pub fn rest(&self) -> &'a [String] {
        &self.args[self.pos..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_flags_values_and_stops_at_the_command() {
        let args = v(&["--a", "--b=1", "--c", "2", "--", "cmd", "--x"]);
        let mut f = Flags::new(&args);
        assert_eq!(f.next_flag(), Some("--a"));
        assert!(!f.has_inline());
        assert_eq!(f.next_flag(), Some("--b"));
        assert_eq!(f.value("", "--b").unwrap(), "1");
        assert_eq!(f.next_flag(), Some("--c"));
        assert_eq!(f.value("", "--c").unwrap(), "2");
        assert_eq!(f.next_flag(), None);
        assert_eq!(f.rest(), &v(&["cmd", "--x"])[..]);
        let args = v(&["--c"]);
        let mut f = Flags::new(&args);
        f.next_flag();
        assert_eq!(
            f.value("run: ", "--c").unwrap_err(),
            "run: --c needs a value"
        );
        let args = v(&["cmd"]);
        assert_eq!(Flags::new(&args).next_flag(), None);
    }
}
