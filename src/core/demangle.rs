//! A small demangler for the Itanium C++ ABI names HIP kernels get
//! (`_Z6vecAddPfPKfS1_i` -> `vecAdd(float*, float const*, float const*, int)`).
//!
//! Why not a crate: librmcp.so is preloaded into every process of a job, and
//! its start-up cost (the dynamic loader's relocations) is budgeted to the
//! last thousand instructions (docs/performance.md); a full demangler's
//! tables would spend that budget for a name printed once per fault. glibc
//! has no demangler. This covers what kernel names are made of: nested
//! names, templates with type and integer arguments, builtin, pointer,
//! reference and cv-qualified types, and substitutions. Anything else
//! (local names, lambdas, packs, expressions, operators) returns None and
//! the caller prints the mangled name with a note. The output follows
//! c++filt's spelling; the unit tests hold it to c++filt's output.
//!
//! Runs when a kernel's name is first resolved (at its first launch), never
//! in the fault handler, so it may allocate.

struct P<'a> {
    s: &'a [u8],
    i: usize,
    subs: Vec<String>,
    /// The template arguments of the outermost function name (for T_).
    targs: Vec<String>,
    depth: u32,
}

/// Demangles `name`, or None when it is not a mangled name this subset
/// understands.
pub fn demangle(name: &str) -> Option<String> {
    let rest = name.strip_prefix("_Z")?;
    let mut p = P {
        s: rest.as_bytes(),
        i: 0,
        subs: Vec::new(),
        targs: Vec::new(),
        depth: 0,
    };
    let out = p.encoding()?;
    (p.i == p.s.len()).then_some(out)
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn number(&mut self) -> Option<usize> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn encoding(&mut self) -> Option<String> {
        self.eat(b'L'); // internal linkage
        let (name, is_template) = self.name(true)?;
        if self.i == self.s.len() {
            return Some(name);
        }
        // A function template's encoding starts with its return type.
        let ret = if is_template { Some(self.ty()?) } else { None };
        let mut params = Vec::new();
        while self.i < self.s.len() && self.peek() != Some(b'E') {
            params.push(self.ty()?);
        }
        let params = if params.len() == 1 && params[0] == "void" {
            String::new()
        } else {
            params.join(", ")
        };
        Some(match ret {
            Some(r) => format!("{r} {name}({params})"),
            None => format!("{name}({params})"),
        })
    }

    /// A name; `top`: the function's own name (its template arguments are
    /// what T_ refers to). Returns the name and whether it ends in template
    /// arguments.
    fn name(&mut self, top: bool) -> Option<(String, bool)> {
        match self.peek()? {
            b'N' => {
                self.i += 1;
                while matches!(self.peek(), Some(b'K' | b'V' | b'r')) {
                    self.i += 1; // cv-qualifiers of a member function: not printed by c++filt here
                }
                let mut full = String::new();
                let mut templ = false;
                loop {
                    if self.eat(b'E') {
                        break;
                    }
                    if self.peek() == Some(b'I') {
                        if full.is_empty() {
                            return None;
                        }
                        let args = self.template_args()?;
                        full.push_str(&fmt_args(&args));
                        if top {
                            self.targs = args;
                        }
                        templ = true;
                    } else {
                        let part = if self.peek() == Some(b'S') {
                            let s = self.substitution()?;
                            if !full.is_empty() {
                                return None;
                            }
                            full = s;
                            templ = false;
                            continue;
                        } else {
                            self.unqualified()?
                        };
                        if !full.is_empty() {
                            full.push_str("::");
                        }
                        full.push_str(&part);
                        templ = false;
                    }
                    // Every prefix but the whole name is a candidate; the
                    // whole one is added unless it is the function's own.
                    if self.peek() != Some(b'E') || !top {
                        self.subs.push(full.clone());
                    }
                }
                Some((full, templ))
            }
            b'S' if self.s.get(self.i + 1) == Some(&b't') => {
                self.i += 2;
                let n = format!("std::{}", self.unqualified()?);
                self.maybe_template(n, top)
            }
            b'S' => {
                let n = self.substitution()?;
                if self.peek() != Some(b'I') {
                    return None;
                }
                let args = self.template_args()?;
                if top {
                    self.targs = args.clone();
                }
                let full = n + &fmt_args(&args);
                Some((full, true))
            }
            _ => {
                let n = self.unqualified()?;
                self.maybe_template(n, top)
            }
        }
    }

    fn maybe_template(&mut self, n: String, top: bool) -> Option<(String, bool)> {
        if self.peek() != Some(b'I') {
            return Some((n, false));
        }
        self.subs.push(n.clone());
        let args = self.template_args()?;
        if top {
            self.targs = args.clone();
        }
        Some((n + &fmt_args(&args), true))
    }

    fn unqualified(&mut self) -> Option<String> {
        let len = self.number()?;
        let end = self.i.checked_add(len).filter(|&e| e <= self.s.len())?;
        let id = std::str::from_utf8(&self.s[self.i..end]).ok()?;
        self.i = end;
        if id.starts_with("_GLOBAL__N") {
            return Some("(anonymous namespace)".into());
        }
        id.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            .then(|| id.to_string())
    }

    fn substitution(&mut self) -> Option<String> {
        if !self.eat(b'S') {
            return None;
        }
        if self.eat(b'_') {
            return self.subs.first().cloned();
        }
        if self.eat(b't') {
            return Some("std".into());
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if !self.eat(b'_') || digits.is_empty() {
            return None;
        }
        let n = usize::from_str_radix(digits, 36).ok()? + 1;
        self.subs.get(n).cloned()
    }

    fn template_args(&mut self) -> Option<Vec<String>> {
        if !self.eat(b'I') {
            return None;
        }
        let mut args = Vec::new();
        while !self.eat(b'E') {
            if self.eat(b'L') {
                args.push(self.literal()?);
            } else {
                args.push(self.ty()?);
            }
        }
        Some(args)
    }

    fn literal(&mut self) -> Option<String> {
        let ty = self.peek()?;
        self.i += 1;
        let neg = self.eat(b'n');
        let v = self.number()?;
        if !self.eat(b'E') {
            return None;
        }
        let sign = if neg { "-" } else { "" };
        Some(match ty {
            b'b' => (if v == 0 { "false" } else { "true" }).to_string(),
            b'i' => format!("{sign}{v}"),
            b'j' => format!("{v}u"),
            b'l' => format!("{sign}{v}l"),
            b'm' => format!("{v}ul"),
            b'x' => format!("{sign}{v}ll"),
            b'y' => format!("{v}ull"),
            _ => return None,
        })
    }

    fn ty(&mut self) -> Option<String> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let r = self.ty_inner();
        self.depth -= 1;
        r
    }

    fn ty_inner(&mut self) -> Option<String> {
        let c = self.peek()?;
        if let Some(b) = builtin(c) {
            self.i += 1;
            return Some(b.into());
        }
        let t = match c {
            b'D' => {
                let next = *self.s.get(self.i + 1)?;
                self.i += 2;
                match next {
                    b'h' => return Some("half".into()),
                    b'n' => return Some("decltype(nullptr)".into()),
                    b'F' if self.s[self.i..].starts_with(b"16_") => {
                        self.i += 3;
                        return Some("_Float16".into());
                    }
                    _ => return None,
                }
            }
            b'P' | b'R' | b'O' | b'K' | b'V' => {
                self.i += 1;
                let inner = self.ty()?;
                let t = match c {
                    b'P' => format!("{inner}*"),
                    b'R' => format!("{inner}&"),
                    b'O' => format!("{inner}&&"),
                    b'K' => format!("{inner} const"),
                    _ => format!("{inner} volatile"),
                };
                self.subs.push(t.clone());
                return Some(t);
            }
            b'T' => {
                self.i += 1;
                let n = if self.eat(b'_') {
                    0
                } else {
                    let n = self.number()? + 1;
                    if !self.eat(b'_') {
                        return None;
                    }
                    n
                };
                let t = self.targs.get(n)?.clone();
                self.subs.push(t.clone());
                return Some(t);
            }
            b'S' if self.s.get(self.i + 1) != Some(&b't') => {
                let s = self.substitution()?;
                if self.peek() == Some(b'I') {
                    let args = self.template_args()?;
                    let t = s + &fmt_args(&args);
                    self.subs.push(t.clone());
                    return Some(t);
                }
                return Some(s);
            }
            b'N' | b'S' | b'0'..=b'9' => {
                let (n, _) = self.name(false)?;
                // A plain unscoped name is a candidate on its own; nested
                // names pushed their prefixes already.
                if c.is_ascii_digit() && self.subs.last() != Some(&n) {
                    self.subs.push(n.clone());
                }
                n
            }
            _ => return None,
        };
        Some(t)
    }
}

fn builtin(c: u8) -> Option<&'static str> {
    Some(match c {
        b'v' => "void",
        b'w' => "wchar_t",
        b'b' => "bool",
        b'c' => "char",
        b'a' => "signed char",
        b'h' => "unsigned char",
        b's' => "short",
        b't' => "unsigned short",
        b'i' => "int",
        b'j' => "unsigned int",
        b'l' => "long",
        b'm' => "unsigned long",
        b'x' => "long long",
        b'y' => "unsigned long long",
        b'n' => "__int128",
        b'o' => "unsigned __int128",
        b'f' => "float",
        b'd' => "double",
        b'e' => "long double",
        b'g' => "__float128",
        b'z' => "...",
        _ => return None,
    })
}

fn fmt_args(args: &[String]) -> String {
    let joined = args.join(", ");
    // c++filt separates a closing '>' from a nested one.
    if joined.ends_with('>') {
        format!("<{joined} >")
    } else {
        format!("<{joined}>")
    }
}

#[cfg(test)]
mod tests {
    use super::demangle;

    /// Expected strings are c++filt's (binutils 2.40) output for the same input.
    #[test]
    fn matches_cxxfilt_on_kernel_names() {
        for (m, want) in [
            (
                "_Z6vecAddPfPKfS1_i",
                "vecAdd(float*, float const*, float const*, int)",
            ),
            ("_ZN5Outer5InnerEv", "Outer::Inner()"),
            (
                "_ZN2ns6kernelIfLj256EEEvPT_S2_i",
                "void ns::kernel<float, 256u>(float*, float*, int)",
            ),
            ("_Z3fooIiEvT_", "void foo<int>(int)"),
            (
                "_Z6kernelP15HIP_vector_typeIfLj4EEDhb",
                "kernel(HIP_vector_type<float, 4u>*, half, bool)",
            ),
            ("_ZN1a1bEPNS_1cE", "a::b(a::c*)"),
            ("_ZN3foo3barIiEEvv", "void foo::bar<int>()"),
            (
                "_Z10add_kernelPfS_S_i",
                "add_kernel(float*, float*, float*, int)",
            ),
            ("_Z4fillPim", "fill(int*, unsigned long)"),
            (
                "_ZN12_GLOBAL__N_16kernelEPi",
                "(anonymous namespace)::kernel(int*)",
            ),
            ("_Z5probe", "probe"),
        ] {
            assert_eq!(demangle(m).as_deref(), Some(want), "{m}");
        }
    }

    #[test]
    fn gives_up_instead_of_guessing() {
        for m in [
            "vecAdd",
            "_Z",
            "_Z1fIJifEEvDpT_",
            "_ZZ4mainE1x",
            "_Z6vecAddPfPKfS9_i",
            "_Z99x",
            "_ZN2at6native12_GLOBAL__N_113reduce_kernelILi512ELi1ENS1_8ReduceOpIfNS0_14func_wrapper_tIfZNS0_15sum_kernel_implIfffEEvRNS_14TensorIteratorEEUlffE_EEjfLi4EEEEEvT1_",
        ] {
            assert_eq!(demangle(m), None, "{m}");
        }
    }
}
