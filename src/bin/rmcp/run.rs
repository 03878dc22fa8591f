pub fn main(_args: &[String]) -> i32 {
    eprintln!("rmcp: run: not implemented yet");
    2
}
