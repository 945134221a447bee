//! `themes.json`: the theme map for scripts, in a stable schema ([`super::SCHEMA_VERSION`]).

use std::io::Write;

use super::ThemeMap;

pub fn write(map: &ThemeMap, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, map).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}
