fn main() {
    eprintln!("rmcp: not implemented yet");
    std::process::exit(2);
}
