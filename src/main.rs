use std::process::ExitCode;

fn main() -> ExitCode {
    kprov::cli::main()
}
