//! SMPP 3.4 `command_status` values (section 5.1.3) and their names, so a
//! failed bind or submit is reported as `ESME_RINVPASWD`, not `0x0000000E`.

/// A `command_status` value as carried in a PDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandStatus(pub u32);

impl CommandStatus {
    pub const OK: CommandStatus = CommandStatus(0x0000_0000);
    pub const RINVMSGLEN: CommandStatus = CommandStatus(0x0000_0001);
    pub const RINVCMDLEN: CommandStatus = CommandStatus(0x0000_0002);
    pub const RINVCMDID: CommandStatus = CommandStatus(0x0000_0003);
    pub const RINVBNDSTS: CommandStatus = CommandStatus(0x0000_0004);
    pub const RALYBND: CommandStatus = CommandStatus(0x0000_0005);
    pub const RSYSERR: CommandStatus = CommandStatus(0x0000_0008);
    pub const RINVDSTADR: CommandStatus = CommandStatus(0x0000_000B);
    pub const RBINDFAIL: CommandStatus = CommandStatus(0x0000_000D);
    pub const RINVPASWD: CommandStatus = CommandStatus(0x0000_000E);
    pub const RINVSYSID: CommandStatus = CommandStatus(0x0000_000F);
    pub const RMSGQFUL: CommandStatus = CommandStatus(0x0000_0014);
    pub const RSUBMITFAIL: CommandStatus = CommandStatus(0x0000_0045);
    pub const RTHROTTLED: CommandStatus = CommandStatus(0x0000_0058);
    pub const RUNKNOWNERR: CommandStatus = CommandStatus(0x0000_00FF);

    /// True for the statuses that mean "slow down and try again": the
    /// message is retried in order, never failed.
    pub fn is_backpressure(self) -> bool {
        self == Self::RTHROTTLED || self == Self::RMSGQFUL
    }

    /// The name the specification gives this status, or `None` if unknown.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(v, _)| *v == self.0)
            .map(|(_, name)| *name)
    }
}

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (0x{:08X})", self.0),
            None => write!(f, "0x{:08X}", self.0),
        }
    }
}

const NAMES: &[(u32, &str)] = &[
    (0x00, "ESME_ROK"),
    (0x01, "ESME_RINVMSGLEN"),
    (0x02, "ESME_RINVCMDLEN"),
    (0x03, "ESME_RINVCMDID"),
    (0x04, "ESME_RINVBNDSTS"),
    (0x05, "ESME_RALYBND"),
    (0x06, "ESME_RINVPRTFLG"),
    (0x07, "ESME_RINVREGDLVFLG"),
    (0x08, "ESME_RSYSERR"),
    (0x0A, "ESME_RINVSRCADR"),
    (0x0B, "ESME_RINVDSTADR"),
    (0x0C, "ESME_RINVMSGID"),
    (0x0D, "ESME_RBINDFAIL"),
    (0x0E, "ESME_RINVPASWD"),
    (0x0F, "ESME_RINVSYSID"),
    (0x11, "ESME_RCANCELFAIL"),
    (0x13, "ESME_RREPLACEFAIL"),
    (0x14, "ESME_RMSGQFUL"),
    (0x15, "ESME_RINVSERTYP"),
    (0x33, "ESME_RINVNUMDESTS"),
    (0x34, "ESME_RINVDLNAME"),
    (0x40, "ESME_RINVDESTFLAG"),
    (0x42, "ESME_RINVSUBREP"),
    (0x43, "ESME_RINVESMCLASS"),
    (0x44, "ESME_RCNTSUBDL"),
    (0x45, "ESME_RSUBMITFAIL"),
    (0x48, "ESME_RINVSRCTON"),
    (0x49, "ESME_RINVSRCNPI"),
    (0x50, "ESME_RINVDSTTON"),
    (0x51, "ESME_RINVDSTNPI"),
    (0x53, "ESME_RINVSYSTYP"),
    (0x54, "ESME_RINVREPFLAG"),
    (0x55, "ESME_RINVNUMMSGS"),
    (0x58, "ESME_RTHROTTLED"),
    (0x61, "ESME_RINVSCHED"),
    (0x62, "ESME_RINVEXPIRY"),
    (0x63, "ESME_RINVDFTMSGID"),
    (0x64, "ESME_RX_T_APPN"),
    (0x65, "ESME_RX_P_APPN"),
    (0x66, "ESME_RX_R_APPN"),
    (0x67, "ESME_RQUERYFAIL"),
    (0xC0, "ESME_RINVOPTPARSTREAM"),
    (0xC1, "ESME_ROPTPARNOTALLWD"),
    (0xC2, "ESME_RINVPARLEN"),
    (0xC3, "ESME_RMISSINGOPTPARAM"),
    (0xC4, "ESME_RINVOPTPARAMVAL"),
    (0xFE, "ESME_RDELIVERYFAILURE"),
    (0xFF, "ESME_RUNKNOWNERR"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_specification_table() {
        assert_eq!(CommandStatus(0x0E).name(), Some("ESME_RINVPASWD"));
        assert_eq!(CommandStatus(0x58).name(), Some("ESME_RTHROTTLED"));
        assert_eq!(CommandStatus(0x14).name(), Some("ESME_RMSGQFUL"));
        assert_eq!(CommandStatus(0x1234).name(), None);
        assert_eq!(
            CommandStatus::RINVSYSID.to_string(),
            "ESME_RINVSYSID (0x0000000F)"
        );
        assert!(CommandStatus::RTHROTTLED.is_backpressure());
        assert!(!CommandStatus::RSYSERR.is_backpressure());
    }
}
