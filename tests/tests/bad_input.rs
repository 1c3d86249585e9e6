//! A request whose body does not decode gets INVALID_ARGUMENT naming the message and what
//! failed (tonic's default is INTERNAL), and the server goes on serving.

use bytes::{Buf, BufMut};
use skylight_test_support::Scheduler;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends bytes as they are and reads the answer as bytes: what a broken or hostile client
/// puts on the wire.
#[derive(Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

#[test]
fn a_request_that_does_not_decode_is_invalid_argument_naming_the_message() {
    let s = Scheduler::start(&[]).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = skylight_client::tls::channel(&s.uri, &s.nobody())
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/scheduler.Scheduler/GetChallenge",
        );
        // A field tag with wire type 7, which does not exist; then a truncated varint.
        for body in [vec![0x0f, 0x01], vec![0x08, 0xff, 0xff]] {
            grpc.ready().await.unwrap();
            let status = grpc
                .unary(tonic::Request::new(body.clone()), path.clone(), Raw)
                .await
                .expect_err("a body that does not decode is refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            assert!(
                status
                    .message()
                    .starts_with("the message is not a valid ChallengeRequest"),
                "{body:?}: {}",
                status.message()
            );
        }
        // The scheduler still answers a good request.
        let mut c = skylight_proto::scheduler::scheduler_client::SchedulerClient::new(channel);
        c.get_challenge(skylight_proto::scheduler::ChallengeRequest {
            scope: skylight_proto::scheduler::ChallengeScope::Register as i32,
            node_id: skylight_test_support::new_keys().node_id_bytes().to_vec(),
        })
        .await
        .expect("a good request after the bad ones");
    });
}
