//! Heka's `message.proto` as prost types, written by hand so no `protoc` is needed.
//!
//! These owned types are for building messages (JSON input, tests, injection). The data path
//! never decodes into them: it reads records through [`crate::message::view::ProtoView`].

/// One message. Field numbers and defaults follow Heka's schema exactly.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// 16 raw bytes of a type-4 UUID.
    #[prost(bytes = "vec", required, tag = "1")]
    pub uuid: Vec<u8>,
    /// Nanoseconds since the Unix epoch.
    #[prost(int64, required, tag = "2")]
    pub timestamp: i64,
    /// The message type, such as `nginx.access`, that matchers mostly select on; `None` when unset.
    #[prost(string, optional, tag = "3")]
    pub r#type: Option<String>,
    /// The name of the plugin or program that produced the message; `None` when unset.
    #[prost(string, optional, tag = "4")]
    pub logger: Option<String>,
    /// Syslog severity; absent means 7.
    #[prost(int32, optional, tag = "5", default = "7")]
    pub severity: Option<i32>,
    /// The message body, usually the raw text a decoder read; `None` when unset.
    #[prost(string, optional, tag = "6")]
    pub payload: Option<String>,
    /// The version of the producer's message format (Heka's `env_version`); `None` when unset.
    #[prost(string, optional, tag = "7")]
    pub env_version: Option<String>,
    /// The process id of the producer; `None` when unset.
    #[prost(int32, optional, tag = "8")]
    pub pid: Option<i32>,
    /// The host that produced the message; `None` when unset.
    #[prost(string, optional, tag = "9")]
    pub hostname: Option<String>,
    /// The dynamic fields, in order; names may repeat.
    #[prost(message, repeated, tag = "10")]
    pub fields: Vec<Field>,
}

/// One dynamic field. `value_type` selects which of the value arrays is active.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Field {
    /// The field's name, as `Fields[name]` in a matcher; need not be unique within a message.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// The [`ValueType`] number saying which value array is used; `None` means string (0).
    #[prost(enumeration = "ValueType", optional, tag = "2", default = "String")]
    pub value_type: Option<i32>,
    /// A free-form hint for the value's unit or format, such as `ms` or `ipv4`; `None` when unset.
    #[prost(string, optional, tag = "3")]
    pub representation: Option<String>,
    /// The values when `value_type` is string.
    #[prost(string, repeated, tag = "4")]
    pub value_string: Vec<String>,
    /// The values when `value_type` is bytes.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub value_bytes: Vec<Vec<u8>>,
    /// The values when `value_type` is integer.
    #[prost(int64, repeated, packed = "true", tag = "6")]
    pub value_integer: Vec<i64>,
    /// The values when `value_type` is double.
    #[prost(double, repeated, packed = "true", tag = "7")]
    pub value_double: Vec<f64>,
    /// The values when `value_type` is bool.
    #[prost(bool, repeated, packed = "true", tag = "8")]
    pub value_bool: Vec<bool>,
}

/// The active value array of a [`Field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ValueType {
    /// UTF-8 text, in `value_string`.
    String = 0,
    /// Raw bytes, in `value_bytes`.
    Bytes = 1,
    /// Signed 64-bit integers, in `value_integer`.
    Integer = 2,
    /// 64-bit floats, in `value_double`.
    Double = 3,
    /// Booleans, in `value_bool`.
    Bool = 4,
}

impl ValueType {
    /// The lower-case name used by the JSON message form.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Bytes => "bytes",
            ValueType::Integer => "integer",
            ValueType::Double => "double",
            ValueType::Bool => "bool",
        }
    }

    /// Parses the JSON form's name.
    pub fn from_name(name: &str) -> Option<ValueType> {
        Some(match name {
            "string" => ValueType::String,
            "bytes" => ValueType::Bytes,
            "integer" => ValueType::Integer,
            "double" => ValueType::Double,
            "bool" => ValueType::Bool,
            _ => return None,
        })
    }
}

/// The stream-framing header that precedes each record (reference §1.2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// Bytes of the message that follows the header.
    #[prost(uint32, required, tag = "1")]
    pub message_length: u32,
    /// The [`HmacHashFunction`] number of the digest in `hmac`; `None` means MD5 (0).
    #[prost(enumeration = "HmacHashFunction", optional, tag = "3", default = "Md5")]
    pub hmac_hash_function: Option<i32>,
    /// The name of the signer whose key made `hmac`; `None` when the record is not signed.
    #[prost(string, optional, tag = "4")]
    pub hmac_signer: Option<String>,
    /// The version of the signer's key, so keys can be rotated; `None` when not signed.
    #[prost(uint32, optional, tag = "5")]
    pub hmac_key_version: Option<u32>,
    /// The HMAC of the message bytes under the signer's key; `None` when the record is not signed.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub hmac: Option<Vec<u8>>,
}

/// The digest used to sign a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HmacHashFunction {
    /// HMAC-MD5, 16-byte digests; Heka's default.
    Md5 = 0,
    /// HMAC-SHA1, 20-byte digests.
    Sha1 = 1,
}
