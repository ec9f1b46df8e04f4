//! The life of one play: a fresh player -> offer -> Play (waiting for the stream if it is not published yet)
//! -> answer -> PLAYING, and again with a fresh player whenever the stream goes away, the server forgets the
//! play, or the transport breaks, until the app stops playing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zego_protocol::error;
use zego_protocol::message::{ClientMessage, ReplyResult};

use super::core::{Core, StreamEvent};
use crate::config::{PlayerConfig, PlayerState};
use crate::player::Player;
use crate::room::RequestError;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Transport failures in a row before NO_PLAY with 1004020.
const MAX_FAILURES: u32 = 5;
const STABLE: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(250 * u64::from(1u32 << failures.min(4)))
}

/// Runs one play until it is stopped (cancel) or fails, then closes its player.
pub(super) async fn run(
    core: Arc<Core>,
    stream_id: String,
    epoch: u64,
    config: PlayerConfig,
    mut inbox: mpsc::UnboundedReceiver<StreamEvent>,
    cancel: CancellationToken,
) {
    let mut current: Option<Arc<Player>> = None;
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = play(&core, &stream_id, epoch, config, &mut inbox, &mut current) => {}
    }
    if let Some(player) = current.take() {
        close(&stream_id, &player).await;
    }
}

async fn close(stream_id: &str, player: &Player) {
    if tokio::time::timeout(CLOSE_TIMEOUT, player.close())
        .await
        .is_err()
    {
        tracing::warn!(stream_id, "closing the player timed out");
    }
}

async fn play(
    core: &Core,
    stream_id: &str,
    epoch: u64,
    config: PlayerConfig,
    inbox: &mut mpsc::UnboundedReceiver<StreamEvent>,
    current: &mut Option<Arc<Player>>,
) {
    let mut failures = 0u32;
    let failed = |failures: &mut u32| {
        *failures += 1;
        if *failures >= MAX_FAILURES {
            core.end_play(
                &mut core.state.lock(),
                stream_id,
                Some(epoch),
                error::PLAYER_NETWORK_INTERRUPTED,
            );
            return false;
        }
        core.set_play_state(
            stream_id,
            epoch,
            PlayerState::PlayRequesting,
            error::PLAYER_NETWORK_INTERRUPTED,
        );
        true
    };
    'attempt: loop {
        while inbox.try_recv().is_ok() {}
        let Some(session) = core.session_for_play(stream_id, epoch) else {
            return;
        };
        if !session.wait_connected().await {
            return;
        }
        if let Some(old) = current.take() {
            close(stream_id, &old).await;
        }
        let player = Arc::new(core.new_player(stream_id, config));
        *current = Some(player.clone());
        if !core.install_player(stream_id, epoch, &player) {
            return;
        }
        let offer = match player.create_offer().await {
            Ok(offer) => offer,
            Err(code) => {
                tracing::warn!(stream_id, code, "could not create the play offer");
                core.end_play(&mut core.state.lock(), stream_id, Some(epoch), code);
                return;
            }
        };
        let sent = core.request_for_play(stream_id, epoch, |req_id| ClientMessage::Play {
            req_id,
            stream_id: stream_id.to_owned(),
            sdp: offer,
            wait: true,
        });
        let pending = match sent {
            None => return,
            Some(Err(_)) => continue,
            Some(Ok(pending)) => pending,
        };
        let reply = match pending.wait(REPLY_TIMEOUT).await {
            Ok(reply) => reply,
            Err(RequestError::TimedOut) => {
                tracing::warn!(stream_id, "no play reply in time");
                if !failed(&mut failures) {
                    return;
                }
                continue;
            }
            Err(_) => continue,
        };
        let answer = match (reply.code, reply.result) {
            (error::SUCCESS, Some(ReplyResult::Play { sdp: Some(sdp), .. })) => sdp,
            (error::PLAYER_STREAM_NOT_EXIST, Some(ReplyResult::Play { waiting: true, .. })) => {
                core.set_play_state(
                    stream_id,
                    epoch,
                    PlayerState::PlayRequesting,
                    error::PLAYER_STREAM_NOT_EXIST,
                );
                loop {
                    match inbox.recv().await {
                        None => return,
                        Some(StreamEvent::Started { sdp, seq }) if seq > reply.seq => break sdp,
                        // While disconnected the start may have been missed, and a new session has no play:
                        // ask again. A refused start (Stopped) is asked again too.
                        Some(
                            StreamEvent::Connected { seq, .. } | StreamEvent::Stopped { seq, .. },
                        ) if seq > reply.seq => continue 'attempt,
                        Some(_) => {}
                    }
                }
            }
            (code, _) => {
                tracing::warn!(stream_id, code, message = %reply.message, "play refused");
                core.end_play(&mut core.state.lock(), stream_id, Some(epoch), code);
                return;
            }
        };
        if let Err(code) = player.accept_answer(&answer).await {
            tracing::warn!(stream_id, code, "play transport did not connect");
            if !failed(&mut failures) {
                return;
            }
            tokio::time::sleep(retry_delay(failures)).await;
            continue;
        }
        core.set_play_state(stream_id, epoch, PlayerState::Playing, error::SUCCESS);
        let since = Instant::now();
        loop {
            match inbox.recv().await {
                None => return,
                Some(StreamEvent::Stopped { code, seq }) if seq > reply.seq => {
                    // The publisher went away; it may come back, so wait for the stream again.
                    tracing::info!(
                        stream_id,
                        reason = code,
                        "played stream stopped; waiting for it"
                    );
                    core.set_play_state(
                        stream_id,
                        epoch,
                        PlayerState::PlayRequesting,
                        error::PLAYER_STREAM_NOT_EXIST,
                    );
                    continue 'attempt;
                }
                Some(StreamEvent::Connected { lost, listed, seq })
                    if seq > reply.seq && (lost || !listed) =>
                {
                    // A new session has no play; a stream that ended while the connection was down never said so.
                    tracing::info!(stream_id, lost, listed, "playing again after reconnecting");
                    let code = if listed {
                        error::PLAYER_NETWORK_INTERRUPTED
                    } else {
                        error::PLAYER_STREAM_NOT_EXIST
                    };
                    core.set_play_state(stream_id, epoch, PlayerState::PlayRequesting, code);
                    continue 'attempt;
                }
                Some(StreamEvent::TransportFailed) => {
                    tracing::warn!(stream_id, "play transport failed; playing again");
                    if since.elapsed() > STABLE {
                        failures = 0;
                    }
                    if !failed(&mut failures) {
                        return;
                    }
                    tokio::time::sleep(retry_delay(failures)).await;
                    continue 'attempt;
                }
                Some(_) => {}
            }
        }
    }
}
