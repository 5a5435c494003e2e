//! A bounded, allocation-free MessagePack reader and the few writers the Forward protocol
//! needs.
//!
//! [`Reader::value`] reads one value's *header*: a scalar whole, a string or binary as a slice
//! of the input, a container as its element count only. A whole object (a container with
//! everything in it) is walked without recursion by counting the objects still owed: each
//! header read pays one owed object and a container adds its elements to the debt. Every step
//! consumes at least one byte, so a walk ends within the input's length whatever the counts
//! claim, and [`Scan`] can stop at the end of the bytes read so far and resume when more
//! arrive (the connection's frame scan).
//!
//! Nothing here allocates or panics: out-of-range reads are [`Error::Incomplete`], the one
//! byte MessagePack never uses (`0xc1`) is [`Error::Malformed`].

/// One value header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A signed integer (every negative, and positives from int families).
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float 32 or float 64.
    Float(f64),
    /// A string's bytes (not checked for UTF-8).
    Str(&'a [u8]),
    /// A binary's bytes.
    Bin(&'a [u8]),
    /// An array of this many elements (read next).
    Array(u32),
    /// A map of this many key/value pairs (read next).
    Map(u32),
    /// An extension: its type and data.
    Ext(i8, &'a [u8]),
}

/// Why a value could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes end inside the value: more may come.
    Incomplete,
    /// A byte no MessagePack value starts with.
    Malformed,
}

/// A cursor over MessagePack bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.position..).unwrap_or_default()
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        let end = self.position.checked_add(count).ok_or(Error::Incomplete)?;
        let taken = self
            .bytes
            .get(self.position..end)
            .ok_or(Error::Incomplete)?;
        self.position = end;
        Ok(taken)
    }

    fn be(&mut self, count: usize) -> Result<u64, Error> {
        let taken = self.take(count)?;
        Ok(taken
            .iter()
            .fold(0u64, |value, &byte| (value << 8) | u64::from(byte)))
    }

    fn sized(&mut self, length_bytes: usize) -> Result<&'a [u8], Error> {
        let length = self.be(length_bytes)?;
        let length = usize::try_from(length).map_err(|_| Error::Incomplete)?;
        self.take(length)
    }

    fn ext(&mut self, data_bytes: usize) -> Result<Value<'a>, Error> {
        let kind = self.take(1)?[0] as i8;
        Ok(Value::Ext(kind, self.take(data_bytes)?))
    }

    fn ext_sized(&mut self, length_bytes: usize) -> Result<Value<'a>, Error> {
        let length = usize::try_from(self.be(length_bytes)?).map_err(|_| Error::Incomplete)?;
        self.ext(length)
    }

    /// Reads one value header. On an error the position is left where the value started.
    ///
    /// # Errors
    /// [`Error::Incomplete`] when the bytes end inside the header or a string, binary or
    /// extension's data; [`Error::Malformed`] for `0xc1`.
    pub fn value(&mut self) -> Result<Value<'a>, Error> {
        let start = self.position;
        let read = self.read_value();
        if read.is_err() {
            self.position = start;
        }
        read
    }

    fn read_value(&mut self) -> Result<Value<'a>, Error> {
        let byte = self.take(1)?[0];
        Ok(match byte {
            0x00..=0x7f => Value::UInt(u64::from(byte)),
            0x80..=0x8f => Value::Map(u32::from(byte & 0x0f)),
            0x90..=0x9f => Value::Array(u32::from(byte & 0x0f)),
            0xa0..=0xbf => Value::Str(self.take(usize::from(byte & 0x1f))?),
            0xc0 => Value::Nil,
            0xc1 => return Err(Error::Malformed),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => Value::Bin(self.sized(1)?),
            0xc5 => Value::Bin(self.sized(2)?),
            0xc6 => Value::Bin(self.sized(4)?),
            0xc7 => self.ext_sized(1)?,
            0xc8 => self.ext_sized(2)?,
            0xc9 => self.ext_sized(4)?,
            0xca => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.be(8)?)),
            0xcc => Value::UInt(self.be(1)?),
            0xcd => Value::UInt(self.be(2)?),
            0xce => Value::UInt(self.be(4)?),
            0xcf => Value::UInt(self.be(8)?),
            0xd0 => Value::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Int(self.be(8)? as i64),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => Value::Str(self.sized(1)?),
            0xda => Value::Str(self.sized(2)?),
            0xdb => Value::Str(self.sized(4)?),
            0xdc => Value::Array(self.be(2)? as u32),
            0xdd => Value::Array(self.be(4)? as u32),
            0xde => Value::Map(self.be(2)? as u32),
            0xdf => Value::Map(self.be(4)? as u32),
            0xe0..=0xff => Value::Int(i64::from(byte as i8)),
        })
    }

    /// Skips one whole object (a container with everything in it).
    ///
    /// # Errors
    /// As [`Reader::value`]; the position is then where the object started.
    pub fn skip(&mut self) -> Result<(), Error> {
        let start = self.position;
        let mut scan = Scan::new();
        match scan.resume(&self.bytes[start..]) {
            Ok(length) => {
                self.position = start + length;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The bytes of one whole object, consumed.
    ///
    /// # Errors
    /// As [`Reader::skip`].
    pub fn object(&mut self) -> Result<&'a [u8], Error> {
        let start = self.position;
        self.skip()?;
        Ok(&self.bytes[start..self.position])
    }
}

/// A resumable walk over one whole object: [`Scan::resume`] is called with the object's
/// bytes as they grow (always from the object's first byte) and carries on where it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the object walked so far (each a whole header).
    walked: usize,
    /// Objects still owed; 0 before the first call (the object itself is owed then).
    owed: u64,
    started: bool,
}

impl Scan {
    /// A walk that has not started.
    pub fn new() -> Scan {
        Scan::default()
    }

    /// Bytes walked so far: everything before them is known to be whole values.
    pub fn walked(&self) -> usize {
        self.walked
    }

    /// Walks on through `bytes` (the object from its first byte; at least as many bytes as the
    /// last call had). Returns the object's length once it is whole.
    ///
    /// # Errors
    /// [`Error::Incomplete`]: call again with more bytes; [`Error::Malformed`]: the stream
    /// cannot be read on.
    pub fn resume(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        if !self.started {
            self.started = true;
            self.owed = 1;
        }
        let mut reader = Reader {
            bytes,
            position: self.walked,
        };
        while self.owed > 0 {
            let value = reader.value()?;
            self.walked = reader.position;
            self.owed -= 1;
            match value {
                Value::Array(count) => self.owed += u64::from(count),
                Value::Map(count) => self.owed += 2 * u64::from(count),
                _ => {}
            }
        }
        Ok(self.walked)
    }
}

/// Appends an array header of `count` elements.
pub fn put_array(out: &mut Vec<u8>, count: u32) {
    if count < 16 {
        out.push(0x90 | count as u8);
    } else if count <= u32::from(u16::MAX) {
        out.push(0xdc);
        out.extend_from_slice(&(count as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&count.to_be_bytes());
    }
}

/// Appends a map header of `count` pairs.
pub fn put_map(out: &mut Vec<u8>, count: u32) {
    if count < 16 {
        out.push(0x80 | count as u8);
    } else if count <= u32::from(u16::MAX) {
        out.push(0xde);
        out.extend_from_slice(&(count as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&count.to_be_bytes());
    }
}

/// Appends a string (its bytes as given).
pub fn put_str(out: &mut Vec<u8>, text: &[u8]) {
    let length = text.len();
    if length < 32 {
        out.push(0xa0 | length as u8);
    } else if length <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xd9, length as u8]);
    } else if length <= usize::from(u16::MAX) {
        out.push(0xda);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    }
    out.extend_from_slice(text);
}

/// Appends a binary header of `length` bytes (the caller appends the bytes).
pub fn put_bin_header(out: &mut Vec<u8>, length: usize) {
    if length <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xc4, length as u8]);
    } else if length <= usize::from(u16::MAX) {
        out.push(0xc5);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    }
}

/// Appends a binary.
pub fn put_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    put_bin_header(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends a signed integer in its shortest form.
pub fn put_int(out: &mut Vec<u8>, value: i64) {
    if (0..128).contains(&value) {
        out.push(value as u8);
    } else if (-32..0).contains(&value) {
        out.push(value as i8 as u8);
    } else if value >= 0 {
        out.push(0xcf);
        out.extend_from_slice(&(value as u64).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a float 64.
pub fn put_float(out: &mut Vec<u8>, value: f64) {
    out.push(0xcb);
    out.extend_from_slice(&value.to_bits().to_be_bytes());
}

/// Appends a boolean.
pub fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// Appends an EventTime (extension type 0: seconds and nanoseconds, big-endian u32 each) for
/// `timestamp_ns` nanoseconds since the epoch.
pub fn put_event_time(out: &mut Vec<u8>, timestamp_ns: i64) {
    let seconds = timestamp_ns.div_euclid(1_000_000_000) as u32;
    let nanoseconds = timestamp_ns.rem_euclid(1_000_000_000) as u32;
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&seconds.to_be_bytes());
    out.extend_from_slice(&nanoseconds.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_family() {
        let mut bytes = Vec::new();
        put_array(&mut bytes, 3);
        put_str(&mut bytes, b"tag");
        put_event_time(&mut bytes, 1_700_000_000_123_456_789);
        put_map(&mut bytes, 2);
        put_str(&mut bytes, b"n");
        put_int(&mut bytes, -70_000);
        put_str(&mut bytes, b"f");
        put_float(&mut bytes, 1.5);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.value(), Ok(Value::Array(3)));
        assert_eq!(reader.value(), Ok(Value::Str(b"tag")));
        let Ok(Value::Ext(0, data)) = reader.value() else {
            panic!("event time")
        };
        assert_eq!(&data[..4], &1_700_000_000u32.to_be_bytes());
        assert_eq!(&data[4..], &123_456_789u32.to_be_bytes());
        assert_eq!(reader.value(), Ok(Value::Map(2)));
        assert_eq!(reader.value(), Ok(Value::Str(b"n")));
        assert_eq!(reader.value(), Ok(Value::Int(-70_000)));
        assert_eq!(reader.value(), Ok(Value::Str(b"f")));
        assert_eq!(reader.value(), Ok(Value::Float(1.5)));
        assert_eq!(reader.value(), Err(Error::Incomplete));
        assert_eq!(
            Reader::new(&bytes).object().map(<[u8]>::len),
            Ok(bytes.len())
        );
    }

    #[test]
    fn a_scan_resumes_byte_by_byte_to_the_same_length() {
        let mut bytes = Vec::new();
        put_array(&mut bytes, 2);
        put_str(&mut bytes, &[b'x'; 300]);
        put_array(&mut bytes, 20);
        for number in 0..20 {
            put_int(&mut bytes, number * 1000);
        }
        bytes.extend_from_slice(b"tail");
        let whole = bytes.len() - 4;
        let mut scan = Scan::new();
        for end in 0..bytes.len() {
            match scan.resume(&bytes[..end]) {
                Err(Error::Incomplete) => assert!(end < whole),
                Ok(length) => {
                    assert_eq!(length, whole);
                    assert!(end >= whole);
                    return;
                }
                Err(Error::Malformed) => panic!("well formed"),
            }
        }
        panic!("never whole");
    }

    #[test]
    fn huge_counts_cost_only_the_bytes_there_are() {
        // An array claiming 4 G elements of 4 G elements: the walk ends at the bytes' end.
        let bytes = [
            0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(Scan::new().resume(&bytes), Err(Error::Incomplete));
        assert_eq!(Scan::new().resume(&[0x91, 0xc1]), Err(Error::Malformed));
    }

    proptest::proptest! {
        /// Random bytes never panic, and a whole object's length never passes the input.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut reader = Reader::new(&bytes);
            while reader.value().is_ok() {}
            if let Ok(length) = Scan::new().resume(&bytes) {
                proptest::prop_assert!(length <= bytes.len());
            }
        }

        /// Every truncation of a well-formed object is incomplete, never malformed.
        #[test]
        fn truncations_are_incomplete(text in ".{0,40}", number in proptest::num::i64::ANY, cut in 0usize..200) {
            let mut bytes = Vec::new();
            put_array(&mut bytes, 3);
            put_str(&mut bytes, text.as_bytes());
            put_int(&mut bytes, number);
            put_map(&mut bytes, 1);
            put_str(&mut bytes, b"k");
            put_bin(&mut bytes, text.as_bytes());
            let cut = cut.min(bytes.len());
            let scanned = Scan::new().resume(&bytes[..cut]);
            if cut < bytes.len() {
                proptest::prop_assert_eq!(scanned, Err(Error::Incomplete));
            } else {
                proptest::prop_assert_eq!(scanned, Ok(bytes.len()));
            }
        }
    }
}
