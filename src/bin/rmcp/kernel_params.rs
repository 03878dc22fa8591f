pub fn main(_args: &[String]) -> i32 {
    eprintln!("rmcp: kernel-params: not implemented yet");
    2
}
