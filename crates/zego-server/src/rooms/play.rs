//! Playing: the check before the relay is asked, the outcome after (or a wait for the stream), stopping.

use super::*;

impl Registry {
    /// Checks a play. A live stream (of any room of the app) is granted; a missing one is refused with 1004002,
    /// or with `wait` the offer is kept and the reply says `waiting`. Playing a stream again replaces the play.
    pub fn prepare_play(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        offer: &str,
        wait: bool,
        _now: Now,
    ) -> Prepared<PlayGrant> {
        let refuse = |code| Prepared::refused(vec![reply(id, req_id, code, None)]);
        let Some(session) = self.sessions.get(&id) else {
            return Prepared::refused(Vec::new());
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return refuse(code);
        }
        if offer.is_empty() || offer.len() > limits::SDP_MAX {
            return refuse(error::COMMON_INVALID_PARAMETER);
        }
        if !session.plays.contains_key(stream_id)
            && session.plays.len() >= limits::PLAYS_PER_SESSION_MAX
        {
            return refuse(error::PLAYER_PLAY_FAILED);
        }
        let app_id = session.app_id;
        let mut outputs = Vec::new();
        self.end_play(id, stream_id, &mut outputs);

        let attempt = self.next_attempt();
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => {
                outputs.extend(unseated.answer(id, req_id, error::PLAYER_INNER_ERROR));
                return Prepared::refused(outputs);
            }
        };
        match seat.streams.get_mut(stream_id).filter(|s| s.is_live()) {
            Some(stream) => {
                stream.players.insert(id);
                let origin = stream.origin.clone();
                seat.session.plays.insert(
                    stream_id.to_owned(),
                    Play::Starting {
                        attempt,
                        direct: true,
                    },
                );
                Prepared {
                    // Closing a play this one replaces.
                    outputs,
                    grant: Some(PlayGrant {
                        session: id,
                        req_id: Some(req_id),
                        key: StreamKey {
                            app_id,
                            stream_id: stream_id.to_owned(),
                        },
                        offer: offer.to_owned(),
                        attempt,
                        origin,
                    }),
                }
            }
            None if wait => {
                seat.session.plays.insert(
                    stream_id.to_owned(),
                    Play::Waiting {
                        offer: offer.to_owned(),
                    },
                );
                seat.waiting
                    .entry(stream_id.to_owned())
                    .or_default()
                    .insert(id);
                outputs.push(reply(
                    id,
                    req_id,
                    error::PLAYER_STREAM_NOT_EXIST,
                    Some(ReplyResult::Play {
                        sdp: None,
                        waiting: true,
                    }),
                ));
                Prepared::refused(outputs)
            }
            None => {
                outputs.push(reply(id, req_id, error::PLAYER_STREAM_NOT_EXIST, None));
                Prepared::refused(outputs)
            }
        }
    }

    /// Records the relay's answer to a play: a reply for a direct play, [`ServerMessage::PlayStarted`] for one
    /// that waited (or [`ServerMessage::PlayStopped`] if the relay refused it).
    pub fn finish_play(&mut self, grant: PlayGrant, outcome: RelayOutcome) -> Vec<Output> {
        let id = grant.session;
        let stream_id = grant.key.stream_id.as_str();
        let Some(session) = self.sessions.get_mut(&id).filter(|s| {
            matches!(
                s.plays.get(stream_id),
                Some(Play::Starting { attempt, .. }) if *attempt == grant.attempt
            )
        }) else {
            return self.moot_play(&grant, outcome);
        };
        let mut outputs = Vec::new();
        match outcome {
            Ok((relay, answer)) => {
                session
                    .plays
                    .insert(stream_id.to_owned(), Play::Active { relay });
                tracing::info!(
                    session = id,
                    app_id = grant.key.app_id,
                    stream_id,
                    "play started"
                );
                outputs.push(match grant.req_id {
                    Some(req_id) => reply(
                        id,
                        req_id,
                        error::SUCCESS,
                        Some(ReplyResult::Play {
                            sdp: Some(answer),
                            waiting: false,
                        }),
                    ),
                    None => send(
                        id,
                        ServerMessage::PlayStarted {
                            stream_id: stream_id.to_owned(),
                            sdp: answer,
                        },
                    ),
                });
            }
            Err(refusal) => {
                session.plays.remove(stream_id);
                if let Some(stream) = self
                    .apps
                    .get_mut(&grant.key.app_id)
                    .and_then(|a| a.streams.get_mut(stream_id))
                {
                    stream.players.remove(&id);
                }
                tracing::warn!(session = id, stream_id, code = refusal.code, reason = %refusal.message, "play refused by the relay");
                outputs.push(match grant.req_id {
                    Some(req_id) => send(
                        id,
                        ServerMessage::Reply {
                            req_id,
                            code: refusal.code,
                            message: refusal.message,
                            result: None,
                        },
                    ),
                    None => send(
                        id,
                        ServerMessage::PlayStopped {
                            stream_id: stream_id.to_owned(),
                            code: stream_delete_reason::REMOVED_BY_SERVER,
                        },
                    ),
                });
            }
        }
        outputs
    }

    /// The answer to a play that became moot while the relay worked: it was stopped, replaced, or its stream or
    /// session went away. The relay session it got is closed. A waited play was told by whoever ended it; a direct
    /// play still owes its request a reply.
    fn moot_play(&self, grant: &PlayGrant, outcome: RelayOutcome) -> Vec<Output> {
        let mut outputs = Vec::new();
        if let Ok((relay, _)) = outcome {
            outputs.push(Output::CloseRelay(relay));
        }
        if let (Some(req_id), true) = (grant.req_id, self.sessions.contains_key(&grant.session)) {
            outputs.push(reply(
                grant.session,
                req_id,
                error::PLAYER_STREAM_NOT_EXIST,
                None,
            ));
        }
        outputs
    }

    pub fn stop_play(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        _now: Now,
    ) -> Vec<Output> {
        if !self.sessions.contains_key(&id) {
            return Vec::new();
        }
        if let Err(code) = validate::stream_id(stream_id) {
            return vec![reply(id, req_id, code, None)];
        }
        let mut outputs = Vec::new();
        let code = if self.end_play(id, stream_id, &mut outputs) {
            error::SUCCESS
        } else {
            error::PLAYER_STREAM_NOT_PLAYED
        };
        outputs.push(reply(id, req_id, code, None));
        outputs
    }
}
