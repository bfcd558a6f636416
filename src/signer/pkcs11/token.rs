//! The dev token: SoftHSM2 configuration under the data directory, random PINs in 0600 files,
//! and first-run token initialisation. Production tokens are initialised by a key ceremony and
//! never touched here (`hsm.auto_init` is refused unless `dev = true`).

use std::{
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::Path,
};

use cryptoki::{context::Pkcs11, session::UserType, slot::Slot, types::AuthPin};

use super::{error::CallContext, Pkcs11Error};
use crate::config::{HsmConfig, SecretRef};

/// Points SoftHSM2 at `<data-dir>/softhsm2.conf` (creating it and the token directory) and
/// creates missing PIN files, when the config asks privca to manage a SoftHSM2 token.
///
/// Must run before the module is loaded and before any other thread exists (it sets
/// `SOFTHSM2_CONF` in the process environment).
pub fn prepare_softhsm(hsm: &HsmConfig, data_dir: &Path) -> std::io::Result<()> {
    if !(hsm.auto_init && hsm.is_softhsm()) {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir)?;
    let data_dir = std::fs::canonicalize(data_dir)?;
    let tokens = data_dir.join("tokens");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&tokens)?;
    let conf = data_dir.join("softhsm2.conf");
    if !conf.exists() {
        let text = format!(
            "# written by privca: SoftHSM2 token store for this data directory\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        );
        write_private(&conf, text.as_bytes())?;
    }
    std::env::set_var("SOFTHSM2_CONF", &conf);
    for pin in [Some(&hsm.user_pin), hsm.so_pin.as_ref()].into_iter().flatten() {
        if let SecretRef::File { path, .. } = pin {
            if !path.exists() {
                write_private(path, random_pin()?.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Creates `path` with mode 0600 (its directory 0700) and writes `contents`.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn random_pin() -> std::io::Result<String> {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| std::io::Error::other("no system randomness"))?;
    Ok(hex::encode(bytes))
}

/// Finds the slot holding the token labelled `label`.
pub(crate) fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, Pkcs11Error> {
    for slot in ctx.get_slots_with_token().ctx("C_GetSlotList")? {
        let info = ctx.get_token_info(slot).ctx("C_GetTokenInfo")?;
        if info.token_initialized() && info.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Initialises a fresh token labelled as configured and sets its user PIN (dev only). Refuses
/// when SoftHSM2's token directory holds a token the module could not read: SoftHSM2 skips a
/// damaged `token.object` silently, and a new token in its place would hide the lost keys.
pub(crate) fn init_token(ctx: &Pkcs11, hsm: &HsmConfig) -> Result<Slot, Pkcs11Error> {
    if hsm.is_softhsm() {
        check_softhsm_tokens_readable(ctx, &hsm.token_label)?;
    }
    let so_pin = hsm
        .so_pin
        .as_ref()
        .ok_or_else(|| Pkcs11Error::Pin(std::io::Error::other("hsm.so_pin is required to initialise a token")))?
        .read()
        .map_err(Pkcs11Error::Pin)?;
    let user_pin = hsm.user_pin.read().map_err(Pkcs11Error::Pin)?;
    let mut free = None;
    for slot in ctx.get_slots_with_token().ctx("C_GetSlotList")? {
        if !ctx.get_token_info(slot).ctx("C_GetTokenInfo")?.token_initialized() {
            free = Some(slot);
            break;
        }
    }
    let slot = free.ok_or_else(|| Pkcs11Error::TokenNotFound(format!("{} (and no free slot)", hsm.token_label)))?;
    let so = AuthPin::from(so_pin.expose().to_owned());
    ctx.init_token(slot, &so, &hsm.token_label).ctx("C_InitToken")?;
    // SoftHSM2 moves the new token to a new slot id: look it up again by label.
    let slot = find_token(ctx, &hsm.token_label)?.ok_or_else(|| Pkcs11Error::TokenNotFound(hsm.token_label.clone()))?;
    let session = ctx.open_rw_session(slot).ctx("C_OpenSession")?;
    session.login(UserType::So, Some(&so)).ctx("C_Login(SO)")?;
    session.init_pin(&AuthPin::from(user_pin.expose().to_owned())).ctx("C_InitPIN")?;
    session.logout().ctx("C_Logout")?;
    tracing::info!(token = %hsm.token_label, "initialised PKCS#11 token");
    Ok(slot)
}

/// Fails when SoftHSM2's token directory has more tokens (subdirectories with a `token.object`)
/// than the module lists as initialised.
fn check_softhsm_tokens_readable(ctx: &Pkcs11, label: &str) -> Result<(), Pkcs11Error> {
    let Some(dir) = softhsm_token_dir() else { return Ok(()) };
    let on_disk = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().filter(|e| e.path().join("token.object").is_file()).count())
        .unwrap_or(0);
    let mut readable = 0;
    for slot in ctx.get_slots_with_token().ctx("C_GetSlotList")? {
        if ctx.get_token_info(slot).ctx("C_GetTokenInfo")?.token_initialized() {
            readable += 1;
        }
    }
    if on_disk > readable {
        return Err(Pkcs11Error::TokenUnreadable {
            label: label.to_owned(),
            dir: dir.display().to_string(),
            on_disk,
            readable,
        });
    }
    Ok(())
}

/// `directories.tokendir` of the SoftHSM2 configuration in use (`SOFTHSM2_CONF`, else the
/// Debian default).
fn softhsm_token_dir() -> Option<std::path::PathBuf> {
    let conf = std::env::var_os("SOFTHSM2_CONF").unwrap_or_else(|| "/etc/softhsm/softhsm2.conf".into());
    let text = std::fs::read_to_string(conf).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "directories.tokendir").then(|| std::path::PathBuf::from(value.trim()))
    })
}
