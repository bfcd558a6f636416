//! GetCACaps (§3.5): the capabilities privca implements, one per line.

/// Every keyword, in the order micromdm and smallstep send them.
pub const CAPABILITIES: [&str; 9] =
    ["Renewal", "SHA-1", "SHA-256", "SHA-512", "AES", "DES3", "GetNextCACert", "POSTPKIOperation", "SCEPStandard"];

/// The `text/plain` GetCACaps body.
pub fn body() -> String {
    let mut s = CAPABILITIES.join("\n");
    s.push('\n');
    s
}
