//! Unit-test harness for decoders: plans a decoder from a config text (behind a TcpInput, as
//! a daemon would), builds it for one core and runs it through [`Decoder::decode_message`].

use std::sync::Arc;

use super::{DecodeContext, Decoder, DecoderBuild, DecoderKind};
use crate::config::plan::{GlobalPlan, Overrides};
use crate::config::{add_text, plan, ConfigError, Document};
use crate::matcher::MatcherSet;
use crate::message::{LineMeta, MessageView, UuidSource};
use crate::runtime::filters::FilterShared;
use crate::runtime::router::Router;
use crate::telemetry::Telemetry;

/// One core's context for decoding in a test: a router with no destinations.
pub struct Harness {
    router: Router,
    telemetry: Arc<Telemetry>,
    meta: LineMeta,
    uuids: UuidSource,
    global: Option<GlobalPlan>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// A harness whose lines come from an input named `tcp_in`, host `h1`.
    pub fn new() -> Harness {
        let telemetry = Telemetry::new(1, vec!["tcp_in".into()]);
        let router = Router::new(
            MatcherSet::new(Vec::new()),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            FilterShared::new(0),
            telemetry.clone(),
            0,
        );
        Harness {
            router,
            telemetry,
            meta: LineMeta {
                type_: b"tcp_in".to_vec().into(),
                logger: b"tcp_in".to_vec().into(),
                hostname: b"h1".to_vec().into(),
            },
            uuids: UuidSource::with_seed(1),
            global: None,
        }
    }

    /// Plans the decoder section `name` of `text` (its sections and any subs).
    ///
    /// # Errors
    /// The config error.
    pub fn plan(text: &str, name: &str) -> Result<Arc<dyn DecoderKind>, ConfigError> {
        let text = format!(
            "[tcp_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\n\
             splitter = \"TokenSplitter\"\ndecoder = \"{name}\"\n{text}"
        );
        let mut document = Document {
            origin: "test.toml".into(),
            ..Document::default()
        };
        add_text(&mut document, "test.toml", &text)?;
        let plan = plan::build(&document, &Overrides::default())?;
        Ok(plan.inputs[0]
            .decoder
            .clone()
            .expect("the input names a decoder"))
    }

    /// Builds `kind` for core row 0.
    pub fn build(&mut self, kind: &Arc<dyn DecoderKind>) -> Box<dyn Decoder> {
        let global = self.global.get_or_insert_with(|| {
            let mut document = Document::default();
            add_text(
                &mut document,
                "g.toml",
                "[tcp_in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:1\"\n",
            )
            .expect("parses");
            plan::build(&document, &Overrides::default())
                .expect("plans")
                .global
        });
        let build = DecoderBuild {
            global,
            filter_index: &|_| None,
            row: 0,
        };
        kind.build(&build).expect("builds")
    }

    /// Decodes the line `record` with a decoder built from `kind`; the messages it makes.
    ///
    /// # Errors
    /// The decoder's code.
    pub fn decode(
        &mut self,
        kind: &Arc<dyn DecoderKind>,
        record: &[u8],
    ) -> Result<Vec<Vec<u8>>, &'static str> {
        let mut decoder = self.build(kind);
        self.decode_with(decoder.as_mut(), record)
    }

    /// Decodes the line `record` with `decoder`; the messages it makes.
    ///
    /// # Errors
    /// The decoder's code.
    pub fn decode_with(
        &mut self,
        decoder: &mut dyn Decoder,
        record: &[u8],
    ) -> Result<Vec<Vec<u8>>, &'static str> {
        let mut context = DecodeContext {
            router: &mut self.router,
            telemetry: &self.telemetry,
            core: 0,
            plugin: 0,
            meta: &self.meta,
            now_ns: 1_796_299_200_000_000_000,
            uuids: &mut self.uuids,
        };
        let line = MessageView::Line(context.line(record));
        let mut out = vec![1, 2, 3];
        let decoded = decoder.decode_message(&line, &mut context, &mut out);
        if decoded.is_err() {
            assert_eq!(
                out,
                [1, 2, 3],
                "a failed decode leaves the buffer as it was"
            );
        }
        // The routing path must agree with the buffer path.
        let routed = decoder.decode(record, &mut context);
        assert_eq!(routed.is_ok(), decoded.is_ok());
        decoded?;
        Ok(crate::filter::injected_records(&out[3..])
            .map(<[u8]>::to_vec)
            .collect())
    }
}
