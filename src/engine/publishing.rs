//! The life of one publish: offer -> Publish -> answer -> PUBLISHING, then republishing whatever breaks it
//! (the connection to the server, a new server session, the media transport) until it is stopped or fails.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, ReplyResult};

use super::core::{Core, PublisherSlot, StreamEvent};
use crate::config::{PublishChannel, PublisherState};
use crate::room::RequestError;

/// How long the server may take to answer a Publish (it asks the relay first).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed attempts in a row before NO_PUBLISH with 1003021.
const MAX_FAILURES: u32 = 5;
/// Publishing this long without trouble forgets earlier failures.
const STABLE: Duration = Duration::from_secs(10);
/// Closing a transport is bounded so a stuck peer cannot hold a channel forever.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(250 * u64::from(1u32 << failures.min(4)))
}

/// Runs one publish until it is stopped (cancel) or fails, then closes its transport.
pub(super) async fn run(
    core: Arc<Core>,
    channel: PublishChannel,
    stream_id: String,
    epoch: u64,
    mut inbox: mpsc::UnboundedReceiver<StreamEvent>,
    cancel: CancellationToken,
    slot: Arc<PublisherSlot>,
) {
    let _turn = tokio::select! {
        turn = slot.turn.lock() => turn,
        _ = cancel.cancelled() => return,
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = publish(&core, channel, &stream_id, epoch, &mut inbox, &slot) => {}
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, slot.publisher.close_transport())
        .await
        .is_err()
    {
        tracing::warn!(stream_id, "closing the publish transport timed out");
    }
}

async fn publish(
    core: &Core,
    channel: PublishChannel,
    stream_id: &str,
    epoch: u64,
    inbox: &mut mpsc::UnboundedReceiver<StreamEvent>,
    slot: &PublisherSlot,
) {
    let publisher = &slot.publisher;
    let mut failures = 0u32;
    let mut first = true;
    // Counts a failed attempt; false when the publish has failed for good.
    let failed = |failures: &mut u32| {
        *failures += 1;
        if *failures >= MAX_FAILURES {
            core.end_publish(
                &mut core.state.lock(),
                channel,
                Some(epoch),
                error::PUBLISHER_RETRY_TIMEOUT,
            );
            return false;
        }
        core.set_publish_state(
            channel,
            epoch,
            PublisherState::PublishRequesting,
            error::PUBLISHER_NETWORK_INTERRUPTED_RETRYING,
        );
        true
    };
    'attempt: loop {
        // What was queued is about the previous transport.
        while inbox.try_recv().is_ok() {}
        let Some(session) = core.session_for_publish(channel, epoch) else {
            return;
        };
        if !session.wait_connected().await {
            return; // The room ended; the engine ends this publish with the room's code.
        }
        if !first {
            publisher.close_transport().await;
        }
        first = false;
        let offer = match publisher.create_offer(stream_id).await {
            Ok(offer) => offer,
            Err(code) => {
                tracing::warn!(stream_id, code, "could not create the publish offer");
                core.end_publish(&mut core.state.lock(), channel, Some(epoch), code);
                return;
            }
        };
        let extra_info = core
            .state
            .lock()
            .extra_info
            .get(&channel)
            .cloned()
            .unwrap_or_default();
        let sent = core.request_for_publish(channel, epoch, |req_id| ClientMessage::Publish {
            req_id,
            stream_id: stream_id.to_owned(),
            extra_info,
            sdp: offer,
        });
        let pending = match sent {
            None => return,
            Some(Err(_)) => continue, // Disconnected meanwhile: wait for the connection again.
            Some(Ok(pending)) => pending,
        };
        let reply = match pending.wait(REPLY_TIMEOUT).await {
            Ok(reply) => reply,
            Err(RequestError::TimedOut) => {
                tracing::warn!(stream_id, "no publish reply in time");
                if !failed(&mut failures) {
                    return;
                }
                continue;
            }
            Err(_) => continue,
        };
        if reply.code != error::SUCCESS {
            tracing::warn!(stream_id, code = reply.code, message = %reply.message, "publish refused");
            core.end_publish(&mut core.state.lock(), channel, Some(epoch), reply.code);
            return;
        }
        let Some(ReplyResult::Publish { sdp }) = reply.result else {
            core.end_publish(
                &mut core.state.lock(),
                channel,
                Some(epoch),
                error::PUBLISHER_INNER_ERROR,
            );
            return;
        };
        if let Err(code) = publisher.accept_answer(&sdp).await {
            tracing::warn!(stream_id, code, "publish transport did not connect");
            if !failed(&mut failures) {
                return;
            }
            tokio::time::sleep(retry_delay(failures)).await;
            continue;
        }
        core.set_publish_state(channel, epoch, PublisherState::Publishing, error::SUCCESS);
        let since = Instant::now();
        loop {
            match inbox.recv().await {
                None => return,
                Some(StreamEvent::TransportFailed) => {
                    tracing::warn!(stream_id, "publish transport failed; publishing again");
                    if since.elapsed() > STABLE {
                        failures = 0;
                    }
                    if !failed(&mut failures) {
                        return;
                    }
                    tokio::time::sleep(retry_delay(failures)).await;
                    continue 'attempt;
                }
                Some(StreamEvent::Connected { lost, listed, seq })
                    if seq > reply.seq && (lost || !listed) =>
                {
                    tracing::info!(
                        stream_id,
                        lost,
                        "the server no longer has the stream; publishing again"
                    );
                    core.set_publish_state(
                        channel,
                        epoch,
                        PublisherState::PublishRequesting,
                        error::PUBLISHER_NETWORK_INTERRUPTED_RETRYING,
                    );
                    continue 'attempt;
                }
                Some(_) => {}
            }
        }
    }
}
