//! The `rmcp` command: `doctor`, `run`, `kernel-params` and `completions`.
//! Options are parsed by clap; a usage error is one line on stderr and exit
//! status 2, as it was before clap.

mod doctor;
mod json;
mod kept_reports;
mod kernel_params;
mod kfd;
mod library_file;
mod locate;
mod preload;
mod run;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

/// Coherent-memory rewriting shim and GPU-fault explainer for ROCm on
/// RDNA1/RDNA2.
#[derive(Parser)]
#[command(
    name = "rmcp",
    version,
    arg_required_else_help = true,
    after_help = "`rmcp COMMAND --help` shows the options of one command."
)]
struct Cli {
    /// Print the path of the librmcp.so that `rmcp run` preloads (for
    /// `LD_PRELOAD=$(rmcp --print-library) python3 train.py`).
    #[arg(long, exclusive = true)]
    print_library: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check GPUs, environment, amdgpu parameters, kernel log and PyTorch.
    Doctor(doctor::Args),
    /// Run CMD with librmcp.so preloaded.
    Run(run::Args),
    /// Print (or write) a commented modprobe.d snippet for the GPUs found.
    KernelParams(kernel_params::Args),
    /// Print a shell completion script (e.g. `rmcp completions bash >
    /// /etc/bash_completion.d/rmcp`).
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(e, &argv)),
    };
    let code = match cli.command {
        _ if cli.print_library => locate::print_library(),
        Some(Command::Doctor(a)) => doctor::main(a),
        Some(Command::Run(a)) => run::main(a),
        Some(Command::KernelParams(a)) => kernel_params::main(a),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "rmcp", &mut std::io::stdout());
            0
        }
        None => {
            let _ = Cli::command().write_help(&mut std::io::stderr());
            2
        }
    };
    std::process::exit(code);
}

/// Prints a clap error and returns the exit status: help and version go to
/// stdout with 0; `rmcp` alone prints the help to stderr with 2; any other
/// usage error is one line naming what was wrong and what is accepted, 2.
fn usage_error(e: clap::Error, argv: &[std::ffi::OsString]) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return 0;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return 2;
        }
        _ => {}
    }
    let sub = argv
        .get(1)
        .and_then(|s| s.to_str())
        .filter(|s| Cli::command().find_subcommand(s).is_some());
    eprintln!("rmcp: {}", one_line(&e, sub));
    2
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) if !v.is_empty() => Some(v.join(", ")),
        _ => None,
    }
}

/// The options of subcommand `sub`, for "accepted: ..." in messages.
fn options_of(sub: &str) -> String {
    let cmd = Cli::command();
    let Some(c) = cmd.find_subcommand(sub) else {
        return String::new();
    };
    c.get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            Some(match a.get_value_names() {
                Some(v) if a.get_action().takes_values() => format!("--{long} {}", v.join(" ")),
                _ => format!("--{long}"),
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(e: &clap::Error, sub: Option<&str>) -> String {
    let prefix = sub.map(|s| format!("{s}: ")).unwrap_or_default();
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    // clap names an option as "--mode <MODE>"; the messages name "--mode".
    let arg_name = arg.split(' ').next().unwrap_or("").to_string();
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .chain(["help".to_string()])
                .collect();
            let what = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unknown command '{what}' (accepted: {})", names.join(", "))
        }
        ErrorKind::UnknownArgument => match sub {
            Some("run") => format!(
                "run: unknown option '{arg}' (accepted: {}; put the command after --)",
                options_of("run")
            ),
            Some(s) => format!("unknown {s} option '{arg}' (accepted: {})", options_of(s)),
            None => {
                format!("unknown option '{arg}' (accepted: a command first, or --help, --version, --print-library)")
            }
        },
        ErrorKind::InvalidValue => {
            let value = context(e, ContextKind::InvalidValue).filter(|v| !v.is_empty());
            match (value, context(e, ContextKind::ValidValue)) {
                (None, _) => format!("{prefix}{arg_name} needs a value"),
                (Some(value), Some(valid)) => {
                    format!("{prefix}bad {arg_name} '{value}' (accepted: {valid})")
                }
                (Some(value), None) => format!("{prefix}bad {arg_name} '{value}'"),
            }
        }
        ErrorKind::MissingRequiredArgument if sub == Some("run") => {
            "run: no command given (rmcp run [OPTIONS] -- CMD [ARGS...])".to_string()
        }
        _ => {
            // clap's own first line, without its "error: " label.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("").trim();
            format!("{prefix}{}", first.strip_prefix("error: ").unwrap_or(first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(args: &[&str]) -> String {
        let argv: Vec<std::ffi::OsString> = std::iter::once("rmcp")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        let e = Cli::try_parse_from(&argv).err().expect("a usage error");
        let sub = argv
            .get(1)
            .and_then(|s| s.to_str())
            .filter(|s| Cli::command().find_subcommand(s).is_some());
        one_line(&e, sub)
    }

    #[test]
    fn usage_errors_are_one_line_naming_the_value_and_the_choices() {
        assert_eq!(
            err(&["frob"]),
            "unknown command 'frob' (accepted: doctor, run, kernel-params, completions, help)"
        );
        assert_eq!(
            err(&["run", "--mode", "fast", "--", "true"]),
            "run: bad --mode 'fast' (accepted: auto, force, off)"
        );
        assert!(err(&["doctor", "--frob"])
            .starts_with("unknown doctor option '--frob' (accepted: --json, --sysfs-root"));
        assert_eq!(
            err(&["doctor", "--kernel-log"]),
            "doctor: --kernel-log needs a value"
        );
        assert_eq!(
            err(&["run", "--mode", "auto"]),
            "run: no command given (rmcp run [OPTIONS] -- CMD [ARGS...])"
        );
        for e in [
            err(&["run", "--frob", "--", "x"]),
            err(&["doctor", "--json=1"]),
        ] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    fn run_args(args: &[&str]) -> run::Args {
        let argv = ["rmcp", "run"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Run(a)) => a,
            _ => panic!("not run"),
        }
    }

    #[test]
    fn the_command_of_run_keeps_its_own_options() {
        let a = run_args(&["--log", "info", "python3", "-c", "--mode"]);
        assert_eq!(a.command, ["python3", "-c", "--mode"]);
        assert_eq!(a.log.as_deref(), Some("info"));
        let a = run_args(&[
            "--mode",
            "force",
            "--log=debug",
            "--on-gpu-fault",
            "cpu",
            "--",
            "python3",
            "-c",
            "x",
        ]);
        assert_eq!(a.mode.as_deref(), Some("force"));
        assert_eq!(a.log.as_deref(), Some("debug"));
        assert!(a.on_gpu_fault.is_some());
        assert_eq!(a.command, ["python3", "-c", "x"]);
        assert!(!a.no_audit);
        assert!(run_args(&["--no-audit", "x"]).no_audit);
    }

    #[test]
    fn every_command_has_help_and_completions_name_them() {
        for sub in ["doctor", "run", "kernel-params", "completions"] {
            let e = Cli::try_parse_from(["rmcp", sub, "--help"]).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{sub}");
            assert!(e.render().to_string().contains("Usage: rmcp"), "{sub}");
        }
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "rmcp",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for word in ["doctor", "kernel-params", "--sysfs-root", "--on-gpu-fault"] {
            assert!(script.contains(word), "{word}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
