//! A CPU profile in Go's pprof format (`perftools.profiles.Profile`, profile.proto), gzipped
//! as Go's `runtime/pprof` writes it, so `go tool pprof` and every pprof viewer read it.
//!
//! The protobuf is written by hand: pprof-rs's own encoders need protoc or an old prost, and
//! the message is small and fixed.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// What a profile holds, independent of pprof-rs's types (tests build one by hand).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Samples per second the profiler took.
    pub frequency: u32,
    pub start: Option<SystemTime>,
    pub duration: Duration,
    pub samples: Vec<Sample>,
    /// The executable's path: pprof names the profile after it, and a mapping saying the
    /// functions are already symbolized keeps it from looking for symbols itself.
    pub binary: Option<String>,
}

/// One distinct stack of one thread and how many times it was sampled.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Leaf first, as pprof wants location ids.
    pub stack: Vec<Frame>,
    pub count: u64,
    pub thread: String,
}

/// One return address, with the functions inlined at it: innermost first, the function the
/// code belongs to last (pprof's order for a Location's lines).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame(pub Vec<Symbol>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Symbol {
    /// Demangled.
    pub name: String,
    /// As in the symbol table.
    pub system_name: String,
    pub filename: String,
    pub line: u32,
}

impl Profile {
    pub fn from_report(report: &pprof::Report) -> Self {
        let mut samples: Vec<Sample> = report
            .data
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(frames, count)| Sample {
                stack: frames
                    .frames
                    .iter()
                    .skip_while(|inlined| inlined.iter().any(is_sampler))
                    .map(|inlined| {
                        Frame(
                            inlined
                                .iter()
                                .map(|s| Symbol {
                                    name: s.name(),
                                    system_name: s.sys_name().into_owned(),
                                    filename: s.filename().into_owned(),
                                    line: s.lineno(),
                                })
                                .collect(),
                        )
                    })
                    .collect(),
                count: count.unsigned_abs() as u64,
                thread: frames.thread_name_or_id(),
            })
            .collect();
        // The most sampled first, so the same report always encodes the same way.
        samples.sort_by(|a, b| b.count.cmp(&a.count).then(a.thread.cmp(&b.thread)));
        Profile {
            frequency: u32::try_from(report.timing.frequency).unwrap_or(0),
            start: Some(report.timing.start_time),
            duration: report.timing.duration,
            samples,
            binary: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }

    /// Nanoseconds between two samples: each sample stands for this much CPU time.
    pub fn period_nanos(&self) -> i64 {
        1_000_000_000 / i64::from(self.frequency.max(1))
    }
}

/// A frame of the profiler's own unwinding at the leaf end of every stack: pprof-rs drops
/// its signal handler's frame and the one after it, but not the unwinder frames above it
/// when they are not inlined into the handler (debug builds).
fn is_sampler(symbol: &pprof::Symbol) -> bool {
    let name = symbol.name();
    name.starts_with("backtrace::") || name.contains("pprof::backtrace::")
}

// profile.proto field numbers.
mod field {
    pub const SAMPLE_TYPE: u32 = 1;
    pub const SAMPLE: u32 = 2;
    pub const MAPPING: u32 = 3;
    pub const LOCATION: u32 = 4;
    pub const FUNCTION: u32 = 5;
    pub const STRING_TABLE: u32 = 6;
    pub const TIME_NANOS: u32 = 9;
    pub const DURATION_NANOS: u32 = 10;
    pub const PERIOD_TYPE: u32 = 11;
    pub const PERIOD: u32 = 12;
}

/// The encoded `Profile` message (not compressed).
pub fn encode(profile: &Profile) -> Vec<u8> {
    let period = profile.period_nanos();
    let mut strings = Strings::default();
    let samples_count = value_type(strings.id("samples"), strings.id("count"));
    let cpu_nanos = value_type(strings.id("cpu"), strings.id("nanoseconds"));
    let thread_key = strings.id("thread");
    let mapping = profile.binary.as_ref().map(|path| {
        let mut m = Msg::default();
        m.uint(1, 1);
        m.int(5, strings.id(path));
        for has in 7..=10 {
            // has_functions, has_filenames, has_line_numbers, has_inline_frames
            m.uint(has, 1);
        }
        m.0
    });
    let mapping_id = u64::from(mapping.is_some());

    let mut functions: HashMap<&Symbol, u64> = HashMap::new();
    let mut function_msgs = Vec::new();
    let mut locations: HashMap<&Frame, u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    let mut sample_msgs = Vec::new();
    for sample in &profile.samples {
        let mut location_ids = Vec::with_capacity(sample.stack.len());
        for frame in &sample.stack {
            let next_location = locations.len() as u64 + 1;
            let location_id = *locations.entry(frame).or_insert_with(|| {
                let mut loc = Msg::default();
                loc.uint(1, next_location);
                loc.uint(2, mapping_id);
                for symbol in &frame.0 {
                    let next_function = functions.len() as u64 + 1;
                    let function_id = *functions.entry(symbol).or_insert_with(|| {
                        let mut f = Msg::default();
                        f.uint(1, next_function);
                        f.int(2, strings.id(&symbol.name));
                        f.int(3, strings.id(&symbol.system_name));
                        f.int(4, strings.id(&symbol.filename));
                        function_msgs.push(f.0);
                        next_function
                    });
                    let mut line = Msg::default();
                    line.uint(1, function_id);
                    line.int(2, i64::from(symbol.line));
                    loc.bytes(4, &line.0);
                }
                location_msgs.push(loc.0);
                next_location
            });
            location_ids.push(location_id);
        }
        let count = i64::try_from(sample.count).unwrap_or(i64::MAX);
        let mut s = Msg::default();
        s.packed(1, location_ids.iter().copied());
        s.packed(2, [count as u64, count.saturating_mul(period) as u64]);
        let mut label = Msg::default();
        label.int(1, thread_key);
        label.int(2, strings.id(&sample.thread));
        s.bytes(3, &label.0);
        sample_msgs.push(s.0);
    }

    let mut out = Msg::default();
    out.bytes(field::SAMPLE_TYPE, &samples_count);
    out.bytes(field::SAMPLE_TYPE, &cpu_nanos);
    for s in &sample_msgs {
        out.bytes(field::SAMPLE, s);
    }
    if let Some(m) = &mapping {
        out.bytes(field::MAPPING, m);
    }
    for l in &location_msgs {
        out.bytes(field::LOCATION, l);
    }
    for f in &function_msgs {
        out.bytes(field::FUNCTION, f);
    }
    for s in &strings.table {
        out.bytes(field::STRING_TABLE, s.as_bytes());
    }
    let start = profile
        .start
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, nanos);
    out.int(field::TIME_NANOS, start);
    out.int(field::DURATION_NANOS, nanos(profile.duration));
    out.bytes(field::PERIOD_TYPE, &cpu_nanos);
    out.int(field::PERIOD, period);
    out.0
}

/// Gzip, as Go's `runtime/pprof` writes profiles (and `go tool pprof` expects them).
pub fn gzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(raw)?;
    enc.finish()
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn value_type(ty: i64, unit: i64) -> Vec<u8> {
    let mut m = Msg::default();
    m.int(1, ty);
    m.int(2, unit);
    m.0
}

/// The string table: index 0 must be "" (profile.proto), the rest in order of first use.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for Strings {
    fn default() -> Self {
        Self {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// A protobuf message being written. Zero scalars are left out, as proto3 encoders do.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    /// int64: negative values as their two's complement, ten bytes long.
    fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = Msg::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf reader just big enough to check the encoder's output field by field.
    #[derive(Debug, Clone, PartialEq)]
    enum Val {
        Varint(u64),
        Bytes(Vec<u8>),
    }

    fn read_varint(b: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*pos];
            *pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }

    fn fields(b: &[u8]) -> Vec<(u32, Val)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < b.len() {
            let key = read_varint(b, &mut pos);
            let (field, wire) = ((key >> 3) as u32, key & 7);
            match wire {
                0 => out.push((field, Val::Varint(read_varint(b, &mut pos)))),
                2 => {
                    let len = read_varint(b, &mut pos) as usize;
                    out.push((field, Val::Bytes(b[pos..pos + len].to_vec())));
                    pos += len;
                }
                w => panic!("wire type {w} is never written"),
            }
        }
        out
    }

    fn all_bytes(b: &[u8], field: u32) -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| match v {
                Val::Bytes(b) => b,
                other => panic!("field {field} is {other:?}"),
            })
            .collect()
    }

    fn varint_of(b: &[u8], field: u32) -> u64 {
        fields(b)
            .into_iter()
            .find(|(f, _)| *f == field)
            .map_or(0, |(_, v)| match v {
                Val::Varint(v) => v,
                other => panic!("field {field} is {other:?}"),
            })
    }

    fn packed_of(b: &[u8], field: u32) -> Vec<u64> {
        let mut out = Vec::new();
        for p in all_bytes(b, field) {
            let mut pos = 0;
            while pos < p.len() {
                out.push(read_varint(&p, &mut pos));
            }
        }
        out
    }

    fn strings(b: &[u8]) -> Vec<String> {
        all_bytes(b, field::STRING_TABLE)
            .into_iter()
            .map(|s| String::from_utf8(s).expect("utf-8"))
            .collect()
    }

    fn sym(name: &str, line: u32) -> Symbol {
        Symbol {
            name: name.to_owned(),
            system_name: format!("_ZN{name}E"),
            filename: format!("src/{name}.rs"),
            line,
        }
    }

    fn hand_built() -> Profile {
        let main = Frame(vec![sym("main", 10)]);
        let work = Frame(vec![sym("inlined", 3), sym("work", 20)]);
        let leaf = Frame(vec![sym("leaf", 7)]);
        Profile {
            frequency: 100,
            start: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            duration: Duration::from_millis(1500),
            samples: vec![
                Sample {
                    stack: vec![leaf, work.clone(), main.clone()],
                    count: 3,
                    thread: "worker-1".into(),
                },
                Sample {
                    stack: vec![work, main],
                    count: 1,
                    thread: "worker-2".into(),
                },
            ],
            binary: None,
        }
    }

    #[test]
    fn header_fields_are_gos() {
        let b = encode(&hand_built());
        let st = strings(&b);
        assert_eq!(st[0], "", "the string table starts with the empty string");
        let types: Vec<(String, String)> = all_bytes(&b, field::SAMPLE_TYPE)
            .iter()
            .map(|vt| {
                (
                    st[varint_of(vt, 1) as usize].clone(),
                    st[varint_of(vt, 2) as usize].clone(),
                )
            })
            .collect();
        assert_eq!(
            types,
            [
                ("samples".to_owned(), "count".to_owned()),
                ("cpu".to_owned(), "nanoseconds".to_owned())
            ]
        );
        let period_type = &all_bytes(&b, field::PERIOD_TYPE)[0];
        assert_eq!(st[varint_of(period_type, 1) as usize], "cpu");
        assert_eq!(st[varint_of(period_type, 2) as usize], "nanoseconds");
        assert_eq!(varint_of(&b, field::PERIOD), 10_000_000);
        assert_eq!(
            varint_of(&b, field::TIME_NANOS),
            1_700_000_000 * 1_000_000_000
        );
        assert_eq!(varint_of(&b, field::DURATION_NANOS), 1_500_000_000);
    }

    #[test]
    fn stacks_decode_leaf_first_with_inlined_lines() {
        let b = encode(&hand_built());
        let st = strings(&b);
        let functions: HashMap<u64, (String, String, String)> = all_bytes(&b, field::FUNCTION)
            .iter()
            .map(|f| {
                (
                    varint_of(f, 1),
                    (
                        st[varint_of(f, 2) as usize].clone(),
                        st[varint_of(f, 3) as usize].clone(),
                        st[varint_of(f, 4) as usize].clone(),
                    ),
                )
            })
            .collect();
        assert_eq!(functions.len(), 4, "main, inlined, work, leaf once each");
        assert_eq!(
            functions.values().find(|f| f.0 == "work"),
            Some(&(
                "work".to_owned(),
                "_ZNworkE".to_owned(),
                "src/work.rs".to_owned()
            ))
        );
        // Location id -> [(function name, line)], innermost first.
        let locations: HashMap<u64, Vec<(String, u64)>> = all_bytes(&b, field::LOCATION)
            .iter()
            .map(|l| {
                let lines = all_bytes(l, 4)
                    .iter()
                    .map(|line| (functions[&varint_of(line, 1)].0.clone(), varint_of(line, 2)))
                    .collect();
                (varint_of(l, 1), lines)
            })
            .collect();
        assert_eq!(locations.len(), 3, "one location per distinct frame");
        let samples = all_bytes(&b, field::SAMPLE);
        assert_eq!(samples.len(), 2);
        let first = &samples[0];
        let stack: Vec<Vec<(String, u64)>> = packed_of(first, 1)
            .iter()
            .map(|id| locations[id].clone())
            .collect();
        assert_eq!(
            stack,
            [
                vec![("leaf".to_owned(), 7)],
                vec![("inlined".to_owned(), 3), ("work".to_owned(), 20)],
                vec![("main".to_owned(), 10)],
            ]
        );
        assert_eq!(packed_of(first, 2), [3, 30_000_000], "count and CPU time");
        let label = &all_bytes(first, 3)[0];
        assert_eq!(st[varint_of(label, 1) as usize], "thread");
        assert_eq!(st[varint_of(label, 2) as usize], "worker-1");
        assert_eq!(packed_of(&samples[1], 2), [1, 10_000_000]);
    }

    #[test]
    fn an_empty_profile_has_its_header_and_no_sample() {
        let b = encode(&Profile {
            frequency: 100,
            ..Profile::default()
        });
        assert!(all_bytes(&b, field::SAMPLE).is_empty());
        assert_eq!(all_bytes(&b, field::SAMPLE_TYPE).len(), 2);
        assert_eq!(varint_of(&b, field::PERIOD), 10_000_000);
    }

    #[test]
    fn exact_bytes_of_a_minimal_profile() {
        let p = Profile {
            frequency: 100,
            start: Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(5)),
            duration: Duration::from_nanos(7),
            samples: vec![Sample {
                stack: vec![Frame(vec![Symbol {
                    name: "f".into(),
                    system_name: "f".into(),
                    filename: "a.rs".into(),
                    line: 2,
                }])],
                count: 1,
                thread: "t".into(),
            }],
            binary: None,
        };
        // Strings: 0 "", 1 samples, 2 count, 3 cpu, 4 nanoseconds, 5 thread, 6 f, 7 a.rs, 8 t.
        let mut want: Vec<u8> = Vec::new();
        want.extend([0x0a, 4, 0x08, 1, 0x10, 2]);
        want.extend([0x0a, 4, 0x08, 3, 0x10, 4]);
        want.extend([0x12, 16]);
        want.extend([0x0a, 1, 1]);
        want.extend([0x12, 5, 1, 0x80, 0xad, 0xe2, 0x04]);
        want.extend([0x1a, 4, 0x08, 5, 0x10, 8]);
        // location { id 1, line { function_id 1, line 2 } }
        want.extend([0x22, 8, 0x08, 1, 0x22, 4, 0x08, 1, 0x10, 2]);
        // function { id 1, name 6, system_name 6, filename 7 }
        want.extend([0x2a, 8, 0x08, 1, 0x10, 6, 0x18, 6, 0x20, 7]);
        for s in [
            "",
            "samples",
            "count",
            "cpu",
            "nanoseconds",
            "thread",
            "f",
            "a.rs",
            "t",
        ] {
            want.extend([0x32, s.len() as u8]);
            want.extend(s.as_bytes());
        }
        want.extend([0x48, 5, 0x50, 7]); // time_nanos, duration_nanos
        want.extend([0x5a, 4, 0x08, 3, 0x10, 4]); // period_type
        want.extend([0x60, 0x80, 0xad, 0xe2, 0x04]); // period
        assert_eq!(encode(&p), want);
    }

    #[test]
    fn the_binary_is_one_mapping_of_every_location() {
        let b = encode(&Profile {
            binary: Some("/usr/bin/redline".into()),
            ..hand_built()
        });
        let st = strings(&b);
        let mappings = all_bytes(&b, field::MAPPING);
        assert_eq!(mappings.len(), 1);
        let m = &mappings[0];
        assert_eq!(varint_of(m, 1), 1, "id");
        assert_eq!(st[varint_of(m, 5) as usize], "/usr/bin/redline");
        for has in 7..=10 {
            assert_eq!(varint_of(m, has), 1, "field {has}: symbolized already");
        }
        let locations = all_bytes(&b, field::LOCATION);
        assert!(!locations.is_empty());
        assert!(locations.iter().all(|l| varint_of(l, 2) == 1));
        let without = encode(&hand_built());
        assert!(all_bytes(&without, field::MAPPING).is_empty());
        assert!(all_bytes(&without, field::LOCATION)
            .iter()
            .all(|l| varint_of(l, 2) == 0));
    }

    #[test]
    fn gzip_round_trips() {
        let raw = encode(&hand_built());
        let gz = gzip(&raw).expect("in memory");
        assert_eq!(&gz[..2], [0x1f, 0x8b], "gzip magic");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
            .expect("valid gzip");
        assert_eq!(back, raw);
    }

    #[test]
    fn period_never_divides_by_zero() {
        assert_eq!(Profile::default().period_nanos(), 1_000_000_000);
    }
}
