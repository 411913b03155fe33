//! Export format `bulwark-audit-export-v1` (JSON Lines) and its verifier.
//!
//! ```text
//! {"format":"bulwark-audit-export-v1","exported_at":TS,"public_key":HEX|null,"retired_public_keys":[HEX..],"tenants":[UUID..]}
//! per tenant, in header order:
//!   {"type":"tenant","tenant_id":UUID,"head_seq":N,"head_hash":HEX}
//!   {"type":"checkpoint","tenant_id":UUID,"seq":N,"head_hash":HEX,"signed_at":TS,"key_id":HEX,"signature":HEX}   (0..n, sorted by seq, signed_at, key_id)
//!   {"type":"record","tenant_id":UUID,"seq":N,"hash":HEX,"bytes":BASE64}                                          (0..n)
//! {"type":"end","tenants":N,"checkpoints":N,"records":N}
//! ```
//!
//! Every line ends with `\n`. The `end` line makes truncation of the file
//! itself detectable. Checkpoints come before a tenant's records so the file
//! can be verified in one streaming pass.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain::{MAX_RECORD_BYTES, StoredRow};
use crate::checkpoint::{CheckpointWire, SignedCheckpoint, public_key_from_hex, public_key_to_hex};
use crate::hash::{ChainHead, Hash};
use crate::record::AuditTime;
use crate::verify::{KeySource, Verifier, VerifyReport};

/// The `format` value of the header line.
pub const EXPORT_FORMAT: &str = "bulwark-audit-export-v1";

/// Longest accepted line (a maximal record in base64 plus the line's other
/// fields fits with room to spare).
pub const MAX_LINE_BYTES: usize = 4 * MAX_RECORD_BYTES;

/// Longest error message quoted from a parser (attacker-controlled input is
/// never echoed in full).
const MAX_MESSAGE_CHARS: usize = 200;

/// Export writing or verification failed. Chain breaks are not errors: they
/// are reported in [`VerifyReport::first_break`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing failed.
    #[error("export I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file is malformed at `line` (1-based).
    #[error("export line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// [`ExportWriter`] was used out of order.
    #[error("export writer misuse: {0}")]
    Usage(&'static str),
}

/// Header of an export.
#[derive(Clone, Debug)]
pub struct ExportHeader {
    /// When the export was made.
    pub exported_at: AuditTime,
    /// The current checkpoint public key, if any.
    pub public_key: Option<VerifyingKey>,
    /// Earlier public keys that signed checkpoints in this export.
    pub retired_public_keys: Vec<VerifyingKey>,
    /// The tenants exported, in the order their sections appear.
    pub tenants: Vec<Uuid>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderLine {
    format: String,
    exported_at: AuditTime,
    public_key: Option<String>,
    retired_public_keys: Vec<String>,
    tenants: Vec<Uuid>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Tenant {
        tenant_id: Uuid,
        head_seq: u64,
        head_hash: Hash,
    },
    Checkpoint(CheckpointWire),
    Record {
        tenant_id: Uuid,
        seq: u64,
        hash: Hash,
        bytes: String,
    },
    End {
        tenants: u64,
        checkpoints: u64,
        records: u64,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RecordTag {
    Record,
}

/// A record line, parsed without the tagged-enum machinery.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine<'a> {
    #[serde(rename = "type")]
    _tag: RecordTag,
    tenant_id: Uuid,
    seq: u64,
    hash: Hash,
    #[serde(borrow)]
    bytes: std::borrow::Cow<'a, str>,
}

/// Writes an export. Call [`begin_tenant`](Self::begin_tenant) for each
/// header tenant in order, then [`write_record`](Self::write_record) for its
/// rows in ascending seq order, then [`finish`](Self::finish).
///
/// The writer exports rows as given; it does not verify them (an export of a
/// tampered database must show the tampering).
pub struct ExportWriter<W: Write> {
    out: BufWriter<W>,
    tenants: Vec<Uuid>,
    next_tenant: usize,
    current: Option<Uuid>,
    checkpoints: u64,
    records: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Writes the header line.
    pub fn new(writer: W, header: &ExportHeader) -> Result<Self, ExportError> {
        let mut seen = HashSet::new();
        if !header.tenants.iter().all(|t| seen.insert(*t)) {
            return Err(ExportError::Usage("duplicate tenant in header"));
        }
        let mut w = ExportWriter {
            out: BufWriter::new(writer),
            tenants: header.tenants.clone(),
            next_tenant: 0,
            current: None,
            checkpoints: 0,
            records: 0,
        };
        w.line(&HeaderLine {
            format: EXPORT_FORMAT.to_string(),
            exported_at: header.exported_at,
            public_key: header.public_key.as_ref().map(public_key_to_hex),
            retired_public_keys: header
                .retired_public_keys
                .iter()
                .map(public_key_to_hex)
                .collect(),
            tenants: header.tenants.clone(),
        })?;
        Ok(w)
    }

    fn line<T: Serialize>(&mut self, v: &T) -> Result<(), ExportError> {
        serde_json::to_writer(&mut self.out, v).map_err(io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Starts the next tenant's section: its stored chain head and all its
    /// checkpoints.
    pub fn begin_tenant(
        &mut self,
        tenant_id: Uuid,
        head: &ChainHead,
        checkpoints: &[SignedCheckpoint],
    ) -> Result<(), ExportError> {
        if self.tenants.get(self.next_tenant) != Some(&tenant_id) {
            return Err(ExportError::Usage(
                "tenant sections must follow the header's order",
            ));
        }
        if checkpoints
            .iter()
            .any(|c| c.checkpoint.tenant_id != tenant_id)
        {
            return Err(ExportError::Usage("checkpoint of another tenant"));
        }
        self.next_tenant += 1;
        self.current = Some(tenant_id);
        self.line(&Line::Tenant {
            tenant_id,
            head_seq: head.seq,
            head_hash: head.hash,
        })?;
        let mut sorted: Vec<&SignedCheckpoint> = checkpoints.iter().collect();
        sorted.sort_by_key(|c| checkpoint_order(c));
        for cp in sorted {
            self.line(&Line::Checkpoint(CheckpointWire::from(cp.clone())))?;
            self.checkpoints += 1;
        }
        Ok(())
    }

    /// Writes one row of the current tenant.
    pub fn write_record(&mut self, row: &StoredRow) -> Result<(), ExportError> {
        if self.current != Some(row.tenant_id) {
            return Err(ExportError::Usage(
                "record does not belong to the current tenant",
            ));
        }
        if row.record_bytes.len() > MAX_RECORD_BYTES {
            return Err(ExportError::Usage("record larger than MAX_RECORD_BYTES"));
        }
        self.line(&Line::Record {
            tenant_id: row.tenant_id,
            seq: row.seq,
            hash: row.hash,
            bytes: BASE64.encode(&row.record_bytes),
        })?;
        self.records += 1;
        Ok(())
    }

    /// Writes the end line, flushes, and returns the inner writer.
    pub fn finish(mut self) -> Result<W, ExportError> {
        if self.next_tenant != self.tenants.len() {
            return Err(ExportError::Usage("not every header tenant was exported"));
        }
        let end = Line::End {
            tenants: self.tenants.len() as u64,
            checkpoints: self.checkpoints,
            records: self.records,
        };
        self.line(&end)?;
        self.out
            .into_inner()
            .map_err(|e| ExportError::Io(e.into_error()))
    }
}

/// Verifies an export. With `trusted_public_key`, checkpoints are verified
/// against that key only (the key embedded in the file is ignored) and the
/// reports say [`KeySource::Trusted`]; without it, against the keys in the
/// header, and the reports say [`KeySource::EmbeddedOnly`].
///
/// Returns one report per tenant, in file order. A malformed file is an
/// `Err` naming the line; chain breaks are in the reports.
pub fn verify_export<R: Read>(
    reader: R,
    trusted_public_key: Option<&VerifyingKey>,
) -> Result<Vec<VerifyReport>, ExportError> {
    verify_export_with_keys(reader, trusted_public_key.map(std::slice::from_ref))
}

/// Like [`verify_export`], with several trusted keys (current and retired).
pub fn verify_export_with_keys<R: Read>(
    reader: R,
    trusted_public_keys: Option<&[VerifyingKey]>,
) -> Result<Vec<VerifyReport>, ExportError> {
    let mut lines = LineReader {
        inner: BufReader::new(reader),
        buf: Vec::new(),
        line_no: 0,
    };
    if !lines.next_line()? {
        return Err(lines.error("empty file: missing header"));
    }
    let header: HeaderLine = lines.parse()?;
    if header.format != EXPORT_FORMAT {
        return Err(lines.error("unsupported export format"));
    }
    let mut seen = HashSet::new();
    if !header.tenants.iter().all(|t| seen.insert(*t)) {
        return Err(lines.error("duplicate tenant in header"));
    }
    let (keys, key_source) = match trusted_public_keys {
        Some(keys) => (keys.to_vec(), KeySource::Trusted),
        None => {
            let mut keys = Vec::new();
            for hex in header
                .public_key
                .iter()
                .chain(header.retired_public_keys.iter())
            {
                keys.push(
                    public_key_from_hex(hex)
                        .map_err(|e| lines.error(&format!("header public key: {e}")))?,
                );
            }
            (keys, KeySource::EmbeddedOnly)
        }
    };

    let mut reports = Vec::with_capacity(header.tenants.len());
    let mut section: Option<Section> = None;
    let mut totals = (0u64, 0u64); // (checkpoints, records)
    loop {
        if !lines.next_line()? {
            return Err(lines.error("file ends without an end line (truncated export)"));
        }
        // Record lines are the bulk of a file: parse them directly, borrowing
        // the base64 text. Anything else goes through the tagged enum.
        let record_error = match serde_json::from_slice::<RecordLine<'_>>(&lines.buf) {
            Ok(r) => {
                let Some(s) = section.as_mut() else {
                    return Err(lines.error("record outside a tenant section"));
                };
                if r.tenant_id != s.tenant_id {
                    return Err(lines.error("record of another tenant in this section"));
                }
                let record_bytes = BASE64
                    .decode(r.bytes.as_bytes())
                    .map_err(|_| lines.error("record bytes are not valid base64"))?;
                if record_bytes.len() > MAX_RECORD_BYTES {
                    return Err(lines.error("record larger than MAX_RECORD_BYTES"));
                }
                let verifier = s.verifier(&keys, key_source).map_err(|m| lines.error(&m))?;
                // A break is recorded in the verifier and shows in its report;
                // the rest of the file is still checked for well-formedness.
                let _ = verifier.feed(&StoredRow {
                    tenant_id: r.tenant_id,
                    seq: r.seq,
                    record_bytes,
                    hash: r.hash,
                });
                totals.1 += 1;
                continue;
            }
            Err(e) => e,
        };
        let line: Line = lines.parse()?;
        match line {
            Line::Tenant {
                tenant_id,
                head_seq,
                head_hash,
            } => {
                if let Some(s) = section.take() {
                    reports.push(s.finish(&keys, key_source).map_err(|m| lines.error(&m))?);
                }
                if header.tenants.get(reports.len()) != Some(&tenant_id) {
                    return Err(lines.error("tenant section out of header order or not in header"));
                }
                section = Some(Section {
                    tenant_id,
                    head: ChainHead {
                        seq: head_seq,
                        hash: head_hash,
                    },
                    checkpoints: Vec::new(),
                    verifier: None,
                });
            }
            Line::Checkpoint(wire) => {
                let Some(s) = section.as_mut() else {
                    return Err(lines.error("checkpoint outside a tenant section"));
                };
                if s.verifier.is_some() {
                    return Err(lines.error("checkpoint after the tenant's records"));
                }
                let cp =
                    SignedCheckpoint::try_from(wire).map_err(|e| lines.error(&e.to_string()))?;
                if cp.checkpoint.tenant_id != s.tenant_id {
                    return Err(lines.error("checkpoint of another tenant in this section"));
                }
                if s.checkpoints
                    .last()
                    .is_some_and(|prev| checkpoint_order(prev) > checkpoint_order(&cp))
                {
                    return Err(lines.error("checkpoints not in (seq, signed_at, key_id) order"));
                }
                s.checkpoints.push(cp);
                totals.0 += 1;
            }
            Line::Record { .. } => {
                // Unreachable in practice: `RecordLine` accepts every record
                // line that `Line` accepts.
                return Err(lines.error(&format!("malformed record line: {record_error}")));
            }
            Line::End {
                tenants,
                checkpoints,
                records,
            } => {
                if let Some(s) = section.take() {
                    reports.push(s.finish(&keys, key_source).map_err(|m| lines.error(&m))?);
                }
                if reports.len() != header.tenants.len() {
                    return Err(lines.error("end line before every header tenant's section"));
                }
                if tenants != reports.len() as u64 || (checkpoints, records) != totals {
                    return Err(lines.error("end line counts do not match the file"));
                }
                if lines.next_line()? {
                    return Err(lines.error("data after the end line"));
                }
                return Ok(reports);
            }
        }
    }
}

/// The order of checkpoint lines within a tenant section. Only identical
/// checkpoints compare equal (Ed25519 signatures are deterministic), so the
/// order of a section's lines is fixed.
fn checkpoint_order(c: &SignedCheckpoint) -> (u64, AuditTime, crate::checkpoint::KeyId) {
    (
        c.checkpoint.seq,
        c.checkpoint.signed_at,
        c.checkpoint.key_id,
    )
}

struct Section {
    tenant_id: Uuid,
    head: ChainHead,
    checkpoints: Vec<SignedCheckpoint>,
    verifier: Option<Verifier>,
}

impl Section {
    fn verifier(
        &mut self,
        keys: &[VerifyingKey],
        source: KeySource,
    ) -> Result<&mut Verifier, String> {
        if self.verifier.is_none() {
            let mut v = Verifier::with_checkpoints(self.tenant_id, None, keys, &self.checkpoints)
                .map_err(|e| e.to_string())?;
            v.set_key_source(source);
            self.verifier = Some(v);
        }
        self.verifier
            .as_mut()
            .ok_or_else(|| "internal: verifier missing".to_string())
    }

    fn finish(mut self, keys: &[VerifyingKey], source: KeySource) -> Result<VerifyReport, String> {
        let head = self.head;
        self.verifier(keys, source)?;
        let verifier = self
            .verifier
            .ok_or_else(|| "internal: verifier missing".to_string())?;
        Ok(verifier.finish_with_head(&head))
    }
}

struct LineReader<R: Read> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    line_no: u64,
}

impl<R: Read> LineReader<R> {
    /// Reads the next line into `buf` (without its `\n`). Returns false at a
    /// clean end of file.
    fn next_line(&mut self) -> Result<bool, ExportError> {
        self.buf.clear();
        self.line_no += 1;
        let limit = u64::try_from(MAX_LINE_BYTES)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let n = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        if self.buf.last() != Some(&b'\n') {
            return Err(if n as u64 >= limit {
                self.error("line too long")
            } else {
                self.error("last line is not terminated by a newline (truncated export)")
            });
        }
        self.buf.pop();
        Ok(true)
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ExportError> {
        serde_json::from_slice(&self.buf).map_err(|e| self.error(&format!("malformed line: {e}")))
    }

    fn error(&self, message: &str) -> ExportError {
        let mut chars = message.chars();
        let mut message: String = chars.by_ref().take(MAX_MESSAGE_CHARS).collect();
        if chars.next().is_some() {
            message.push('…');
        }
        ExportError::Line {
            line: self.line_no,
            message,
        }
    }
}
