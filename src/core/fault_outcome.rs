//! What the ROCm runtime does with the process after a GPU memory fault, as
//! far as rmcp can know it when its handler runs: the last line of the fault
//! report.
//!
//! ROCr calls every registered fault handler, then prints "Memory access
//! fault by GPU ..." and aborts only if none of them returned success. HIP 7
//! registers one (rmcp's runs before it: docs/fault-flow.md) that returns an
//! error, and so lets ROCr abort, only when core dumps are enabled (soft
//! RLIMIT_CORE not 0) or HIP_SKIP_ABORT_ON_GPU_ERROR is 0; otherwise the
//! process goes on and every HIP call from the next synchronisation on
//! returns hipErrorIllegalAddress. HIP 5 and 6 register no such handler
//! (their libraries do not import hsa_amd_register_system_event_handler), so
//! ROCr aborts. These are the measured cases (tests/model_fault.rs, HIP
//! 7.2.4); anything else is "not known", never a guess.

use std::fmt::{self, Write};

/// The HIP runtime in the process when rmcp registered its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hip {
    /// No HIP runtime was loaded.
    Absent,
    /// libamdhip64 with this major version (its soname's number).
    Major(u32),
    /// Loaded, version not known.
    Unknown,
}

/// HIP_SKIP_ABORT_ON_GPU_ERROR as HIP 7.2.4 was seen to take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipAbort {
    /// Not set: HIP's default (skip the abort).
    Unset,
    /// "0": HIP lets the runtime abort.
    Off,
    /// "1": HIP skips the abort.
    On,
    /// Any other value: its effect was not measured.
    Other,
}

impl SkipAbort {
    pub fn from_value(v: Option<&[u8]>) -> SkipAbort {
        match v {
            None => SkipAbort::Unset,
            Some(b"0") => SkipAbort::Off,
            Some(b"1") => SkipAbort::On,
            Some(_) => SkipAbort::Other,
        }
    }
}

/// RLIMIT_CORE's soft limit when the fault arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreLimit {
    /// getrlimit failed.
    Unreadable,
    /// The limit, RLIM_INFINITY as u64::MAX.
    Bytes(u64),
}

/// The last line when the process goes on.
pub const CONTINUES: &str = "next: the process goes on (HIP 7's default: core dumps off, HIP_SKIP_ABORT_ON_GPU_ERROR not 0); the runtime prints nothing more, the program gets hipErrorIllegalAddress at its next synchronisation and every HIP call after that fails the same way (PyTorch raises torch.AcceleratorError); the work queued on this GPU is lost";

/// What comes next for the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// ROCr prints its own message and aborts the process.
    RuntimeAborts(AbortBecause),
    /// The process goes on; HIP fails every call from the next
    /// synchronisation on with hipErrorIllegalAddress.
    ContinuesWithIllegalAddress,
    /// rmcp cannot tell.
    NotKnown(NotKnownBecause),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortBecause {
    /// HIP 7 with core dumps enabled (the soft limit, u64::MAX: unlimited).
    CoreDumps(u64),
    /// HIP 7 with HIP_SKIP_ABORT_ON_GPU_ERROR=0.
    SkipAbortOff,
    /// A HIP older than 7 (no fault handler of its own).
    OldHip(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotKnownBecause {
    NoHip,
    HipVersion,
    NewerHip(u32),
    CoreLimit,
    SkipAbortValue,
}

/// The outcome for these facts.
pub fn outcome(hip: Hip, core: CoreLimit, skip: SkipAbort) -> Outcome {
    use Outcome::*;
    match hip {
        Hip::Absent => NotKnown(NotKnownBecause::NoHip),
        Hip::Unknown => NotKnown(NotKnownBecause::HipVersion),
        Hip::Major(m) if m < 7 => RuntimeAborts(AbortBecause::OldHip(m)),
        Hip::Major(7) => match (core, skip) {
            (CoreLimit::Bytes(n), _) if n != 0 => RuntimeAborts(AbortBecause::CoreDumps(n)),
            (CoreLimit::Unreadable, _) => NotKnown(NotKnownBecause::CoreLimit),
            (_, SkipAbort::Off) => RuntimeAborts(AbortBecause::SkipAbortOff),
            (_, SkipAbort::Unset | SkipAbort::On) => ContinuesWithIllegalAddress,
            (_, SkipAbort::Other) => NotKnown(NotKnownBecause::SkipAbortValue),
        },
        Hip::Major(m) => NotKnown(NotKnownBecause::NewerHip(m)),
    }
}

impl Outcome {
    /// The JSON report's `next.id`.
    pub fn id(self) -> &'static str {
        match self {
            Outcome::RuntimeAborts(_) => "runtime-aborts",
            Outcome::ContinuesWithIllegalAddress => "continues-hip-error-illegal-address",
            Outcome::NotKnown(_) => "not-known",
        }
    }

    /// The report's last line (without the "rmcp: " prefix).
    pub fn write_line(self, w: &mut impl Write) -> fmt::Result {
        w.write_str("next: ")?;
        match self {
            Outcome::RuntimeAborts(why) => {
                w.write_str("the runtime will now print its own message (\"Memory access fault by GPU ...\") and abort the process, because ")?;
                match why {
                    AbortBecause::CoreDumps(u64::MAX) => w.write_str(
                        "core dumps are enabled (ulimit -c unlimited), and then HIP 7 does not keep the process alive",
                    ),
                    AbortBecause::CoreDumps(n) => write!(
                        w,
                        "core dumps are enabled (RLIMIT_CORE {n} bytes, not 0), and then HIP 7 does not keep the process alive"
                    ),
                    AbortBecause::SkipAbortOff => w.write_str(
                        "HIP_SKIP_ABORT_ON_GPU_ERROR=0 tells HIP 7 not to keep the process alive",
                    ),
                    AbortBecause::OldHip(m) => write!(
                        w,
                        "HIP {m} has no GPU fault handler of its own to keep the process alive"
                    ),
                }
            }
            Outcome::ContinuesWithIllegalAddress => w.write_str(&CONTINUES["next: ".len()..]),
            Outcome::NotKnown(why) => {
                w.write_str("not known to rmcp (")?;
                match why {
                    NotKnownBecause::NoHip => w.write_str(
                        "no HIP runtime was loaded when rmcp registered its handler, so the process's other fault handlers are unknown",
                    )?,
                    NotKnownBecause::HipVersion => {
                        w.write_str("the HIP runtime's version could not be read")?
                    }
                    NotKnownBecause::NewerHip(m) => write!(
                        w,
                        "HIP {m} is newer than the HIP 7 whose behaviour was measured"
                    )?,
                    NotKnownBecause::CoreLimit => {
                        w.write_str("RLIMIT_CORE could not be read, and HIP 7 decides by it")?
                    }
                    NotKnownBecause::SkipAbortValue => w.write_str(
                        "HIP_SKIP_ABORT_ON_GPU_ERROR has a value other than 0 or 1, whose effect was not measured",
                    )?,
                }
                w.write_str("): if the runtime's own \"Memory access fault by GPU\" message follows, it aborts the process; if not, the process goes on and HIP calls fail with hipErrorIllegalAddress from the next synchronisation")
            }
        }
    }
}

/// The major version in a libamdhip64 file name ("libamdhip64.so.7",
/// "libamdhip64.so.7.2.70204"), or None.
pub fn hip_major_from_file_name(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b"libamdhip64.so.")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 4 {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(o: Outcome) -> String {
        let mut s = String::new();
        o.write_line(&mut s).unwrap();
        s
    }

    #[test]
    fn hip7_default_continues() {
        for skip in [SkipAbort::Unset, SkipAbort::On] {
            assert_eq!(
                outcome(Hip::Major(7), CoreLimit::Bytes(0), skip),
                Outcome::ContinuesWithIllegalAddress
            );
        }
        let l = line(Outcome::ContinuesWithIllegalAddress);
        assert!(l.starts_with("next: the process goes on"), "{l}");
        assert!(
            l.contains("hipErrorIllegalAddress at its next synchronisation"),
            "{l}"
        );
        assert!(!l.contains("abort"), "{l}");
    }

    #[test]
    fn hip7_aborts_with_core_dumps_or_skip_off() {
        for skip in [
            SkipAbort::Unset,
            SkipAbort::On,
            SkipAbort::Off,
            SkipAbort::Other,
        ] {
            assert_eq!(
                outcome(Hip::Major(7), CoreLimit::Bytes(1), skip),
                Outcome::RuntimeAborts(AbortBecause::CoreDumps(1))
            );
        }
        assert_eq!(
            outcome(Hip::Major(7), CoreLimit::Bytes(0), SkipAbort::Off),
            Outcome::RuntimeAborts(AbortBecause::SkipAbortOff)
        );
        let l = line(Outcome::RuntimeAborts(AbortBecause::CoreDumps(u64::MAX)));
        assert!(
            l.contains("abort the process") && l.contains("ulimit -c unlimited"),
            "{l}"
        );
        let l = line(Outcome::RuntimeAborts(AbortBecause::SkipAbortOff));
        assert!(l.contains("HIP_SKIP_ABORT_ON_GPU_ERROR=0"), "{l}");
    }

    #[test]
    fn older_hip_aborts() {
        for m in [5, 6] {
            let o = outcome(Hip::Major(m), CoreLimit::Bytes(0), SkipAbort::Unset);
            assert_eq!(o, Outcome::RuntimeAborts(AbortBecause::OldHip(m)));
            assert!(line(o).contains(&format!("HIP {m} has no GPU fault handler")));
        }
    }

    #[test]
    fn what_was_not_measured_is_not_known() {
        let cases = [
            (
                Hip::Absent,
                CoreLimit::Bytes(0),
                SkipAbort::Unset,
                "no HIP runtime",
            ),
            (
                Hip::Unknown,
                CoreLimit::Bytes(0),
                SkipAbort::Unset,
                "version could not be read",
            ),
            (
                Hip::Major(8),
                CoreLimit::Bytes(0),
                SkipAbort::Unset,
                "HIP 8 is newer",
            ),
            (
                Hip::Major(7),
                CoreLimit::Unreadable,
                SkipAbort::Unset,
                "RLIMIT_CORE could not be read",
            ),
            (
                Hip::Major(7),
                CoreLimit::Bytes(0),
                SkipAbort::Other,
                "other than 0 or 1",
            ),
        ];
        for (hip, core, skip, why) in cases {
            let o = outcome(hip, core, skip);
            assert!(
                matches!(o, Outcome::NotKnown(_)),
                "{hip:?} {core:?} {skip:?}"
            );
            assert_eq!(o.id(), "not-known");
            let l = line(o);
            assert!(
                l.starts_with("next: not known to rmcp (") && l.contains(why),
                "{l}"
            );
        }
    }

    #[test]
    fn skip_abort_values() {
        assert_eq!(SkipAbort::from_value(None), SkipAbort::Unset);
        assert_eq!(SkipAbort::from_value(Some(b"0")), SkipAbort::Off);
        assert_eq!(SkipAbort::from_value(Some(b"1")), SkipAbort::On);
        for v in [&b""[..], b"true", b"00", b" 1"] {
            assert_eq!(SkipAbort::from_value(Some(v)), SkipAbort::Other, "{v:?}");
        }
    }

    #[test]
    fn hip_major_from_file_names() {
        assert_eq!(hip_major_from_file_name(b"libamdhip64.so.7"), Some(7));
        assert_eq!(
            hip_major_from_file_name(b"libamdhip64.so.6.4.43484"),
            Some(6)
        );
        assert_eq!(hip_major_from_file_name(b"libamdhip64.so"), None);
        assert_eq!(hip_major_from_file_name(b"libamdhip64.so.x"), None);
        assert_eq!(hip_major_from_file_name(b"libfoo.so.7"), None);
    }

    #[test]
    fn ids() {
        assert_eq!(
            Outcome::RuntimeAborts(AbortBecause::SkipAbortOff).id(),
            "runtime-aborts"
        );
        assert_eq!(
            Outcome::ContinuesWithIllegalAddress.id(),
            "continues-hip-error-illegal-address"
        );
    }
}
