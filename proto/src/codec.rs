//! The codec every generated service and client uses: prost's, except that a message that
//! does not decode is `INVALID_ARGUMENT`, naming the message and what failed, where
//! tonic's answers `INTERNAL` — to a caller, a bad request is their input, not our fault.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf};
use tonic_prost::ProstEncoder;

/// prost's encoding with a decoder whose failures are the caller's.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(PhantomData)
    }
}

/// Decodes `U`; a failure is `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct Decoder<U>(PhantomData<U>);

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(not_decoded::<U>(&e)))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// `the message is not a valid GetChallengeRequest: …`.
fn not_decoded<U>(e: &prost::DecodeError) -> String {
    let name = std::any::type_name::<U>();
    let short = name.rsplit("::").next().unwrap_or(name);
    format!("the message is not a valid {short}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_failure_names_the_message_and_what_failed() {
        let e = crate::scheduler::ChallengeRequest::decode(&[0xff, 0xff][..]).unwrap_err();
        let said = not_decoded::<crate::scheduler::ChallengeRequest>(&e);
        assert!(
            said.starts_with("the message is not a valid ChallengeRequest: "),
            "{said}"
        );
    }
}
