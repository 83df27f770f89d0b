//! Image archives (`apps[].images`): `docker save` / `podman save` tarballs shipped to a
//! node that cannot reach a registry. Each is read once, with the inventory, for the image
//! it holds — its ID (the digest of its config, the same in Docker and Podman), its tags
//! and its architecture — and hashed. The deploy uploads an archive only when the node has
//! neither the archive nor the image; the app tool loads it when the engine lacks the image.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::inventory::{Collector, shown};
use crate::resources::{Content, Kind, Resource};
use crate::shell::quote;

/// Where image archives are kept on a node (one file per image ID).
pub const DIR: &str = "/var/lib/vds-proxy/images";

/// An image archive on a node: checked against its digest before it goes in place, as
/// vds-proxy's own binary is (the app tool loads it when it starts the app).
pub const ARCHIVE: Kind = Kind::new("image-archive", &crate::resources::binary::BinaryOps);

/// One image archive of the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Archive {
    /// As written in the inventory, relative to it.
    pub path: String,
    #[serde(skip)]
    pub source: PathBuf,
    /// The image ID, `sha256:` and 64 hex digits.
    pub id: String,
    /// The names it is saved under, e.g. `localhost/web:1`.
    pub tags: Vec<String>,
    /// `uname -m` of the machines it runs on.
    pub arch: String,
    #[serde(skip)]
    pub size: u64,
    /// SHA-256 of the archive, hex.
    #[serde(skip)]
    pub sha256: String,
}

impl Archive {
    /// Where it is kept on a node.
    pub fn node_path(&self) -> String {
        format!("{DIR}/{}.tar", &self.id["sha256:".len()..])
    }

    /// The resource that ships it, needed only where none of `engines` has the image.
    pub fn resource(&self, engines: &[&str]) -> Resource {
        let has: Vec<String> = engines
            .iter()
            .map(|e| format!("{e} image inspect {} >/dev/null 2>&1", quote(&self.id)))
            .collect();
        let mut r = Resource::text(ARCHIVE, self.node_path(), String::new(), 0o600)
            .present_check(has.join(" && "));
        r.content = Content::Local {
            source: self.source.clone(),
            size: self.size,
            arch: self.arch.clone(),
        };
        r.sha256 = self.sha256.clone();
        r
    }
}

/// Reads the archive at `rel` (relative to the inventory), reporting at `at`.
pub fn read(c: &mut Collector, at: &str, rel: &str) -> Option<Archive> {
    let source = c.base_dir().join(rel);
    match inspect(&source) {
        Ok(mut a) => {
            a.path = rel.to_string();
            Some(a)
        }
        Err(why) => {
            c.push(
                at,
                format!(
                    "{} {why}; expected an archive written by `docker save` or `podman save` (the path is relative to the inventory)",
                    shown(rel)
                ),
            );
            None
        }
    }
}

/// One member of a tar archive: its name, where its data starts, its size.
struct Member {
    name: String,
    offset: u64,
    size: u64,
}

/// The members of the tar archive `f` (ustar and GNU long names).
fn members(f: &mut File) -> Result<Vec<Member>, String> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    let mut header = [0u8; 512];
    loop {
        f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        match f.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.to_string()),
        }
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let b = &header[r];
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let size = u64::from_str_radix(field(124..136).trim(), 8)
            .map_err(|_| "is not a tar archive".to_string())?;
        let data = pos + 512;
        let mut name = field(0..100);
        if &header[257..262] == b"ustar" {
            let prefix = field(345..500);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        match header[156] {
            b'L' => {
                let mut b = vec![0u8; size as usize];
                f.read_exact(&mut b).map_err(|e| e.to_string())?;
                let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
                long_name = Some(String::from_utf8_lossy(&b[..end]).into_owned());
            }
            b'0' | 0 => out.push(Member {
                name: long_name.take().unwrap_or(name),
                offset: data,
                size,
            }),
            _ => long_name = None,
        }
        pos = data + size.div_ceil(512) * 512;
    }
    Ok(out)
}

fn member_json(f: &mut File, m: &Member) -> Result<Value, String> {
    if m.size > 16 << 20 {
        return Err(format!("has a {} of {} bytes", m.name, m.size));
    }
    let mut b = vec![0u8; m.size as usize];
    f.seek(SeekFrom::Start(m.offset))
        .and_then(|_| f.read_exact(&mut b))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&b).map_err(|e| format!("has a {} that is not JSON ({e})", m.name))
}

/// `uname -m` for an OCI architecture name.
fn uname_arch(oci: &str) -> String {
    match oci {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "armv7l",
        "386" => "i686",
        other => other,
    }
    .to_string()
}

/// Reads an image archive: its one image's ID, tags and architecture, and its digest.
fn inspect(path: &Path) -> Result<Archive, String> {
    let mut f = File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let list = members(&mut f)?;
    let find = |name: &str| {
        list.iter()
            .find(|m| m.name.trim_start_matches("./") == name)
    };
    let manifest = find("manifest.json").ok_or("has no manifest.json")?;
    let manifest = member_json(&mut f, manifest)?;
    let images = manifest
        .as_array()
        .ok_or("has a manifest.json that is not a list")?;
    let [image] = &images[..] else {
        return Err(format!(
            "holds {} images; ship one image per archive",
            images.len()
        ));
    };
    let config = image
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("has no Config in its manifest.json")?;
    let hex = config
        .trim_start_matches("blobs/sha256/")
        .trim_end_matches(".json");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "names its config {}, not by its digest",
            shown(config)
        ));
    }
    let config_member = find(config).ok_or("lacks the config its manifest.json names")?;
    let config_json = member_json(&mut f, config_member)?;
    let arch = config_json
        .get("architecture")
        .and_then(Value::as_str)
        .map(uname_arch)
        .ok_or("has a config without an architecture")?;
    let tags = image
        .get("RepoTags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let sha256 = crate::resources::hex(&hasher.finalize());
    Ok(Archive {
        path: String::new(),
        source: path.to_path_buf(),
        id: format!("sha256:{}", hex.to_ascii_lowercase()),
        tags,
        arch,
        size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar member header for `name` of `size` bytes (ustar, checksum left out: the
    /// reader does not check it).
    fn header(name: &str, size: usize) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = b'0';
        h[257..262].copy_from_slice(b"ustar");
        h
    }

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            out.extend_from_slice(&header(name, data.len()));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn an_archive_gives_its_image_id_tags_and_architecture() {
        let hex = "17be598c7a9f61efaa9f6682f39bd752c49f8f9c81e044f33d2c7ee966847fe2";
        let config = format!("{hex}.json");
        let manifest = format!(
            r#"[{{"Config":"{config}","RepoTags":["localhost/web:1"],"Layers":["l/layer.tar"]}}]"#
        );
        let bytes = tar(&[
            ("l/layer.tar", b"layer"),
            (&config, br#"{"architecture":"amd64","os":"linux"}"#),
            ("manifest.json", manifest.as_bytes()),
        ]);
        let dir = std::env::temp_dir().join(format!("vds-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.tar");
        std::fs::write(&path, &bytes).unwrap();
        let a = inspect(&path).unwrap();
        assert_eq!(a.id, format!("sha256:{hex}"));
        assert_eq!(a.tags, ["localhost/web:1"]);
        assert_eq!(a.arch, "x86_64");
        assert_eq!(a.size, bytes.len() as u64);
        assert_eq!(a.sha256, crate::resources::sha256_hex(&bytes));
        assert_eq!(a.node_path(), format!("{DIR}/{hex}.tar"));

        std::fs::write(&path, tar(&[("other.txt", b"x")])).unwrap();
        assert_eq!(inspect(&path).unwrap_err(), "has no manifest.json");
        std::fs::write(&path, b"not a tar at all").unwrap();
        assert!(inspect(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
