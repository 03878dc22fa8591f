//! Whether a file is a shared library this machine's dynamic loader can
//! preload: `rmcp run` checks librmcp.so and librmcp-audit.so before putting
//! them in LD_PRELOAD / LD_AUDIT, because ld.so only warns, in every process
//! of the command, and goes on without them.

use elf::abi::{EM_X86_64, ET_DYN};
use elf::endian::AnyEndian;
use elf::file::Class;
use std::path::Path;

/// The machine rmcp is built for, as an ELF e_machine and in words.
const MACHINE: (u16, &str) = (EM_X86_64, "x86-64");

/// Ok when `path` is a 64-bit ELF shared object for this machine; otherwise
/// what it is instead, as the end of a sentence that begins with the path.
pub fn check(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut magic = Vec::with_capacity(4);
    let _ = file.by_ref().take(4).read_to_end(&mut magic);
    if magic != elf::abi::ELFMAGIC {
        return Err("is not an ELF file".to_string());
    }
    let header = elf::ElfStream::<AnyEndian, _>::open_stream(file)
        .map_err(|e| format!("is not a valid ELF file ({e})"))?
        .ehdr;
    if header.e_machine != MACHINE.0 || header.class != Class::ELF64 {
        let what =
            elf::to_str::e_machine_to_human_str(header.e_machine).unwrap_or("another machine");
        let bits = if header.class == Class::ELF64 { 64 } else { 32 };
        return Err(format!(
            "is a {bits}-bit library for {what}, not for this {} machine",
            MACHINE.1
        ));
    }
    if header.e_type != ET_DYN {
        return Err(format!(
            "is an ELF file but not a shared library (e_type {})",
            elf::to_str::e_type_to_string(header.e_type)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_what_a_file_is() {
        let exe = std::env::current_exe().unwrap();
        let d = std::env::temp_dir().join(format!("rmcp-library-file-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let junk = d.join("junk.so");
        std::fs::write(&junk, b"not really a library").unwrap();
        assert_eq!(check(&junk).unwrap_err(), "is not an ELF file");
        std::fs::write(&junk, b"").unwrap();
        assert_eq!(check(&junk).unwrap_err(), "is not an ELF file");
        assert_eq!(check(&exe), Ok(()), "a PIE executable is a shared object");
        let mut bytes = std::fs::read(&exe).unwrap();
        bytes[18..20].copy_from_slice(&elf::abi::EM_AARCH64.to_le_bytes());
        let arm = d.join("arm.so");
        std::fs::write(&arm, &bytes).unwrap();
        let e = check(&arm).unwrap_err();
        assert!(
            e.starts_with("is a 64-bit library for ") && e.ends_with("not for this x86-64 machine"),
            "{e}"
        );
        assert!(check(&d.join("missing.so"))
            .unwrap_err()
            .starts_with("cannot be read ("));
        let _ = std::fs::remove_dir_all(&d);
    }
}
