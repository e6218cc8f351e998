//! What gets replaced and by what: the placeholder tables and the rules for manifest fields,
//! label values and free text (help texts, error texts, notes).
//!
//! Placeholders are stable within one redaction: the same original always gets the same
//! placeholder, and different originals get different ones, so series stay distinct and
//! joins still line up. Numbers are assigned in a fixed order (manifest fields, then series
//! in the reader's order, then free text in file order), so redacting the same recording
//! twice gives byte-identical output.

use std::collections::{BTreeMap, BTreeSet};

/// Which kinds of value to keep verbatim (`--keep model,host,url,gpu-uuid,labels`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// The served model name (manifest and `model_name` labels).
    pub model: bool,
    /// Host names, IP addresses and ports.
    pub host: bool,
    /// URLs (the manifest's `target_url`, URLs in texts and label values).
    pub url: bool,
    /// GPU UUIDs and serial numbers.
    pub gpu_uuid: bool,
    /// Label values that look like paths or people (`/`, `\`, `@`, a leading `~`).
    pub labels: bool,
}

impl Keep {
    /// Parses a comma-separated list: `model`, `host`, `url`, `gpu-uuid`, `labels`.
    pub fn parse(list: &str) -> Result<Keep, String> {
        let mut k = Keep::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "model" => k.model = true,
                "host" => k.host = true,
                "url" => k.url = true,
                "gpu-uuid" => k.gpu_uuid = true,
                "labels" => k.labels = true,
                other => {
                    return Err(format!(
                        "unknown field {other:?} (use model, host, url, gpu-uuid, labels)"
                    ))
                }
            }
        }
        Ok(k)
    }
}

/// Model-name tokens kept besides the catalog's: quantization schemes, which say how big the
/// weights are without naming whose model it is.
const DTYPE_TOKENS: &[&str] = &[
    "fp8", "fp16", "bf16", "int8", "int4", "awq", "gptq", "w8a8", "w4a16", "nvfp4", "mxfp4",
];

/// The shortest original that free-text replacement looks for: shorter strings (`0`, `gpu`)
/// occur by chance in unrelated text, and would mangle it without hiding anything.
const MIN_SECRET_LEN: usize = 3;

/// One class of placeholder: a prefix and the originals seen, in order of first sight.
#[derive(Debug, Default)]
struct Table {
    map: BTreeMap<String, String>,
    next: u32,
}

impl Table {
    fn get(&mut self, original: &str, make: impl FnOnce(u32) -> String) -> String {
        if let Some(p) = self.map.get(original) {
            return p.clone();
        }
        self.next += 1;
        let p = make(self.next);
        self.map.insert(original.to_string(), p.clone());
        p
    }
}

/// The placeholder tables of one redaction and the rules that fill them.
#[derive(Debug)]
pub struct Redactor {
    keep: Keep,
    vocabulary: BTreeSet<String>,
    model_name: Option<String>,
    models: Table,
    hosts: Table,
    ports: Table,
    urls: Table,
    uuids: Table,
    serials: Table,
    paths: Table,
    people: Table,
    /// Every replaced original with its placeholder, longest first, for free text; rebuilt
    /// lazily after a new original is registered.
    secrets: Option<Vec<(String, String)>>,
}

impl Redactor {
    /// A redactor that keeps `keep` and the model-name tokens in `vocabulary` (the catalog's
    /// match and exclude tokens: see [`super::vocabulary`]). `model_name` is the manifest's
    /// served model name: any label value equal to it is the model too.
    pub fn new(keep: Keep, vocabulary: BTreeSet<String>, model_name: Option<&str>) -> Redactor {
        Redactor {
            keep,
            vocabulary,
            model_name: model_name.map(str::to_string),
            models: Table::default(),
            hosts: Table::default(),
            ports: Table::default(),
            urls: Table::default(),
            uuids: Table::default(),
            serials: Table::default(),
            paths: Table::default(),
            people: Table::default(),
            secrets: None,
        }
    }

    /// The placeholder of a served model name: `model1` followed by the name's catalog tokens,
    /// size tokens (`70b`, `8x7b`, `1.5b` gives `1`, `5b`), bare numbers and quantization
    /// tokens, lower-case, joined by `-`. `meta-llama/Llama-3.1-70B-Instruct` becomes
    /// `model1-llama-3-1-70b`: the catalog matches it exactly as it matched the original
    /// (matching is by tokens, and every token it can look for is kept), while the
    /// organisation and fine-tune names are gone. The number is glued to `model` so that it
    /// never forms a token of its own that a catalog entry could match.
    pub fn model(&mut self, name: &str) -> String {
        if self.keep.model || name.is_empty() {
            return name.to_string();
        }
        let vocabulary = &self.vocabulary;
        let kept = model_tokens(name, vocabulary);
        self.secrets = None;
        self.models.get(name, |n| {
            let mut p = format!("model{n}");
            for t in &kept {
                p.push('-');
                p.push_str(t);
            }
            p
        })
    }

    /// The placeholder of a host name or IP address: `host-N`.
    pub fn host(&mut self, host: &str) -> String {
        if self.keep.host || host.is_empty() {
            return host.to_string();
        }
        self.secrets = None;
        self.hosts.get(host, |n| format!("host-{n}"))
    }

    fn port(&mut self, port: &str) -> String {
        if self.keep.host {
            return port.to_string();
        }
        self.ports.get(port, |n| format!("port-{n}"))
    }

    /// The placeholder of a URL: `url-N`. Its host (and user info) are registered as hosts
    /// too, so they are also replaced where they occur on their own in free text.
    pub fn url(&mut self, url: &str) -> String {
        if let Some(parts) = split_url(url) {
            if !parts.host.is_empty() {
                self.host(parts.host);
            }
            if let Some(user) = parts.userinfo {
                self.host(user);
            }
        }
        if self.keep.url || url.is_empty() {
            return url.to_string();
        }
        self.secrets = None;
        self.urls.get(url, |n| format!("url-{n}"))
    }

    /// The placeholder of a GPU UUID: `gpu-uuid-N`.
    pub fn gpu_uuid(&mut self, uuid: &str) -> String {
        if self.keep.gpu_uuid || uuid.is_empty() {
            return uuid.to_string();
        }
        self.secrets = None;
        self.uuids.get(uuid, |n| format!("gpu-uuid-{n}"))
    }

    /// The placeholder of a GPU serial number: `gpu-serial-N`.
    pub fn gpu_serial(&mut self, serial: &str) -> String {
        if self.keep.gpu_uuid || serial.is_empty() {
            return serial.to_string();
        }
        self.secrets = None;
        self.serials.get(serial, |n| format!("gpu-serial-{n}"))
    }

    /// One label value. In order: a `model_name` label, or a value equal to the manifest's
    /// model name, is the model; a value with `://` is a URL; a value already replaced
    /// elsewhere (a host, a UUID) gets that placeholder; an IP address, or `host:port`
    /// of a known host, is a host; a value with `@` is a person (`user-N`); a value with `/`
    /// or `\`, or starting with `~`, is a path (`path-N`). Anything else is kept, after
    /// replacing known originals inside it as in free text.
    pub fn label_value(&mut self, name: &str, value: &str) -> String {
        if value.is_empty() {
            return String::new();
        }
        if name == "model_name" || self.model_name.as_deref() == Some(value) {
            return self.model(value);
        }
        if value.contains("://") {
            return self.url(value);
        }
        if let Some(p) = self.known(value) {
            return p;
        }
        if is_ipv4(value) || is_ipv6(value) {
            return self.host(value);
        }
        if !self.keep.labels {
            if value.contains('@') {
                self.secrets = None;
                return self.people.get(value, |n| format!("user-{n}"));
            }
            if value.contains('/') || value.contains('\\') || value.starts_with('~') {
                self.secrets = None;
                return self.paths.get(value, |n| format!("path-{n}"));
            }
        }
        self.text(value)
    }

    /// How many distinct originals of each kind were replaced.
    pub fn counts(&self) -> Vec<(String, usize)> {
        [
            ("model", &self.models),
            ("host", &self.hosts),
            ("port", &self.ports),
            ("url", &self.urls),
            ("gpu-uuid", &self.uuids),
            ("gpu-serial", &self.serials),
            ("path", &self.paths),
            ("user", &self.people),
        ]
        .iter()
        .map(|(k, t)| (k.to_string(), t.map.iter().filter(|(a, b)| a != b).count()))
        .collect()
    }

    /// The placeholder already given to `original`, if any.
    fn known(&self, original: &str) -> Option<String> {
        [
            &self.models,
            &self.urls,
            &self.hosts,
            &self.uuids,
            &self.serials,
            &self.paths,
            &self.people,
        ]
        .iter()
        .find_map(|t| t.map.get(original).cloned())
    }

    /// Free text (a help text, an error text, a note): URLs become `url-N`, IP addresses
    /// and known host names `host-N` (a `:port` right after one becomes `:port-N`), and every
    /// other original already replaced elsewhere (model names, UUIDs, paths...) becomes its
    /// placeholder wherever it occurs.
    pub fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        // URLs first, whole, so that their hosts are not replaced piecemeal inside them.
        while let Some((start, end)) = find_url(rest) {
            out.push_str(&self.plain_text(&rest[..start]));
            let url = &rest[start..end];
            out.push_str(&self.url(url));
            rest = &rest[end..];
        }
        out.push_str(&self.plain_text(rest));
        out
    }

    fn secrets(&mut self) -> &[(String, String)] {
        if self.secrets.is_none() {
            let mut all: Vec<(String, String)> = [
                &self.models,
                &self.urls,
                &self.hosts,
                &self.uuids,
                &self.serials,
                &self.paths,
                &self.people,
            ]
            .iter()
            .flat_map(|t| t.map.iter())
            .filter(|(k, v)| k.len() >= MIN_SECRET_LEN && k != v)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
            all.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            self.secrets = Some(all);
        }
        self.secrets.as_deref().unwrap_or_default()
    }

    /// Text without URLs: known originals, then IP addresses, then ports after hosts.
    fn plain_text(&mut self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let mut s = text.to_string();
        for (original, placeholder) in self.secrets().to_vec() {
            if s.contains(&original) {
                s = s.replace(&original, &placeholder);
            }
        }
        let s = self.replace_ips(&s);
        self.replace_ports(&s)
    }

    fn replace_ips(&mut self, s: &str) -> String {
        if self.keep.host {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
            if boundary && b[i].is_ascii_digit() {
                let end = i + b[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                    .unwrap_or(b.len() - i);
                let cand = s[i..end].trim_end_matches('.');
                if is_ipv4(cand) {
                    let p = self.host(cand);
                    out.push_str(&p);
                    i += cand.len();
                    continue;
                }
            }
            if b[i] == b'[' {
                if let Some(close) = s[i..].find(']') {
                    let cand = &s[i + 1..i + close];
                    if is_ipv6(cand) {
                        let p = self.host(cand);
                        out.push('[');
                        out.push_str(&p);
                        out.push(']');
                        i += close + 1;
                        continue;
                    }
                }
            }
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    /// `host-N:8000` becomes `host-N:port-M`; a port is only recognised right after a host
    /// placeholder, since a bare number may be anything.
    fn replace_ports(&mut self, s: &str) -> String {
        if self.keep.host || !s.contains("host-") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find("host-") {
            let digits = rest[at + 5..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let after = at + 5 + digits;
            out.push_str(&rest[..after]);
            rest = &rest[after..];
            if digits > 0 && rest.starts_with(':') {
                let port_len = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                if port_len > 0 {
                    out.push(':');
                    let p = self.port(&rest[1..1 + port_len]);
                    out.push_str(&p);
                    rest = &rest[1 + port_len..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The tokens of a model name that survive redaction, in order of appearance, deduplicated.
fn model_tokens(name: &str, vocabulary: &BTreeSet<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for t in name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
    {
        let keep = vocabulary.contains(&t)
            || DTYPE_TOKENS.contains(&t.as_str())
            || t.bytes().all(|b| b.is_ascii_digit())
            || is_size_token(&t);
        if keep && !kept.contains(&t) {
            kept.push(t);
        }
    }
    kept
}

/// `70b`, `500m`, `8x7b`, `17b16e`-style parameter counts: digits, optionally `x` and more
/// digits, then `b`, `m` or `k` (and optionally an expert count suffix).
fn is_size_token(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let mut rest = &t[digits..];
    if let Some(r) = rest.strip_prefix('x') {
        let d = r.bytes().take_while(u8::is_ascii_digit).count();
        if d == 0 {
            return false;
        }
        rest = &r[d..];
    }
    matches!(rest, "b" | "m" | "k" | "t")
}

/// The pieces of a URL that name a place or a person.
struct UrlParts<'a> {
    userinfo: Option<&'a str>,
    host: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (_, after) = url.split_once("://")?;
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    Some(UrlParts { userinfo, host })
}

/// The byte range of the first URL (`scheme://...`) in `s`: the scheme is letters, digits,
/// `+`, `-`, `.`; the URL runs to whitespace, a quote or a bracket, without trailing
/// punctuation (`http://h:1/metrics: refused` yields `http://h:1/metrics`).
fn find_url(s: &str) -> Option<(usize, usize)> {
    let sep = s.find("://")?;
    let b = s.as_bytes();
    let mut start = sep;
    while start > 0 {
        let c = b[start - 1];
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.') {
            start -= 1;
        } else {
            break;
        }
    }
    let tail = &s[sep + 3..];
    let len = tail
        .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`|,;".contains(c))
        .unwrap_or(tail.len());
    let mut end = sep + 3 + len;
    while end > sep + 3 && matches!(b[end - 1], b':' | b'.' | b',' | b';') {
        end -= 1;
    }
    if start == sep || end == sep + 3 {
        // `://` without a scheme or without anything after it: not a URL; keep looking.
        let (a, e) = find_url(&s[sep + 3..])?;
        return Some((sep + 3 + a, sep + 3 + e));
    }
    Some((start, end))
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

fn is_ipv6(s: &str) -> bool {
    s.matches(':').count() >= 2
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> BTreeSet<String> {
        ["llama", "3", "70b", "mixtral", "8x7b", "qwen3"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn model_placeholders_keep_catalog_and_size_tokens() {
        let mut r = Redactor::new(Keep::default(), vocab(), None);
        assert_eq!(
            r.model("meta-llama/Llama-3.1-70B-Instruct"),
            "model1-llama-3-1-70b"
        );
        assert_eq!(r.model("acme/secret-finetune-13B-AWQ"), "model2-13b-awq");
        assert_eq!(r.model("tiny-llama"), "model3-llama");
        // Stable: the same name, the same placeholder.
        assert_eq!(
            r.model("meta-llama/Llama-3.1-70B-Instruct"),
            "model1-llama-3-1-70b"
        );
        let mut k = Redactor::new(Keep::parse("model").unwrap(), vocab(), None);
        assert_eq!(k.model("acme/x"), "acme/x");
    }

    #[test]
    fn free_text_loses_urls_hosts_ips_and_ports() {
        let mut r = Redactor::new(Keep::default(), vocab(), None);
        assert_eq!(r.url("http://gpu-box.corp:8000/metrics"), "url-1");
        let t = r.text(
            "connect: http://gpu-box.corp:8000/metrics: refused by gpu-box.corp:8000 \
             (10.1.2.3:443, [fe80::1]) x://",
        );
        assert_eq!(
            t,
            "connect: url-1: refused by host-1:port-1 (host-2:port-2, [host-3]) x://"
        );
        // Another URL on the same host gets its own placeholder; the host stays host-1.
        assert_eq!(r.text("GET https://gpu-box.corp/v"), "GET url-2");
        assert_eq!(r.text("gpu-box.corp"), "host-1");
        assert_eq!(
            r.text("version 1.2.3 and 0.32.0"),
            "version 1.2.3 and 0.32.0"
        );
    }

    #[test]
    fn label_values_follow_the_documented_rule() {
        let mut r = Redactor::new(Keep::default(), vocab(), Some("org/Model-70B"));
        assert_eq!(r.label_value("model_name", "org/Model-70B"), "model1-70b");
        assert_eq!(r.label_value("served", "org/Model-70B"), "model1-70b");
        assert_eq!(r.label_value("engine", "0"), "0");
        assert_eq!(r.label_value("finished_reason", "stop"), "stop");
        assert_eq!(r.label_value("adapter", "/home/alice/lora"), "path-1");
        assert_eq!(r.label_value("adapter", "C:\\models\\x"), "path-2");
        assert_eq!(r.label_value("owner", "alice@example.com"), "user-1");
        assert_eq!(r.label_value("peer", "192.168.0.7"), "host-1");
        assert_eq!(r.label_value("x", "~bob"), "path-3");
        assert_eq!(r.label_value("adapter", "/home/alice/lora"), "path-1");
        let mut k = Redactor::new(Keep::parse("labels,host").unwrap(), vocab(), None);
        assert_eq!(
            k.label_value("adapter", "/home/alice/lora"),
            "/home/alice/lora"
        );
        assert_eq!(k.label_value("peer", "192.168.0.7"), "192.168.0.7");
        assert!(Keep::parse("model,bogus").is_err());
    }

    #[test]
    fn size_tokens() {
        for t in ["70b", "8x7b", "500m", "1t"] {
            assert!(is_size_token(t), "{t}");
        }
        for t in ["b", "70", "x7b", "70bb", "llama"] {
            assert!(!is_size_token(t), "{t}");
        }
    }
}
