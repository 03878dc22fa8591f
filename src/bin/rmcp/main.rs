//! The `rmcp` command: `doctor`, `run` and `kernel-params`.

mod args;
mod doctor;
mod json;
mod kernel_params;
mod kfd;
mod locate;
mod run;

pub const USAGE: &str = "\
rmcp — coherent-memory rewriting shim and GPU-fault explainer for ROCm on RDNA1/RDNA2

usage:
  rmcp doctor [--json] [--sysfs-root DIR] [--kernel-log FILE] [--python PATH|none]
      check GPUs, environment, amdgpu parameters, kernel log and PyTorch
  rmcp run [--mode auto|force|off] [--log LEVEL] [--on-gpu-fault cpu] -- CMD [ARGS...]
      run CMD with librmcp.so preloaded
  rmcp kernel-params [--root DIR] [--write [--force]]
      print (or write) a commented modprobe.d snippet for the GPUs found
  rmcp --print-library
      print the path of the librmcp.so that `rmcp run` preloads
  rmcp help | --help | --version

`rmcp COMMAND --help` shows the options of one command.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("doctor") => doctor::main(&args[1..]),
        Some("run") => run::main(&args[1..]),
        Some("kernel-params") => kernel_params::main(&args[1..]),
        Some("help") | Some("-h") | Some("--help") => {
            println!("{USAGE}");
            0
        }
        Some("--print-library") => locate::print_library(),
        Some("--version") | Some("-V") => {
            println!("rmcp {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some(other) => {
            eprintln!(
                "rmcp: unknown command '{other}' (accepted: doctor, run, kernel-params, help)"
            );
            2
        }
        None => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
