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
    #[prost(string, optional, tag = "3")]
    pub r#type: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub logger: Option<String>,
    /// Syslog severity; absent means 7.
    #[prost(int32, optional, tag = "5", default = "7")]
    pub severity: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub payload: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub env_version: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub pid: Option<i32>,
    #[prost(string, optional, tag = "9")]
    pub hostname: Option<String>,
    #[prost(message, repeated, tag = "10")]
    pub fields: Vec<Field>,
}

/// One dynamic field. `value_type` selects which of the value arrays is active.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Field {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(enumeration = "ValueType", optional, tag = "2", default = "String")]
    pub value_type: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub representation: Option<String>,
    #[prost(string, repeated, tag = "4")]
    pub value_string: Vec<String>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub value_bytes: Vec<Vec<u8>>,
    #[prost(int64, repeated, packed = "true", tag = "6")]
    pub value_integer: Vec<i64>,
    #[prost(double, repeated, packed = "true", tag = "7")]
    pub value_double: Vec<f64>,
    #[prost(bool, repeated, packed = "true", tag = "8")]
    pub value_bool: Vec<bool>,
}

/// The active value array of a [`Field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ValueType {
    String = 0,
    Bytes = 1,
    Integer = 2,
    Double = 3,
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
    #[prost(uint32, required, tag = "1")]
    pub message_length: u32,
    #[prost(enumeration = "HmacHashFunction", optional, tag = "3", default = "Md5")]
    pub hmac_hash_function: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub hmac_signer: Option<String>,
    #[prost(uint32, optional, tag = "5")]
    pub hmac_key_version: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub hmac: Option<Vec<u8>>,
}

/// The digest used to sign a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HmacHashFunction {
    Md5 = 0,
    Sha1 = 1,
}
