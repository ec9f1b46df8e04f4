//! Publishing: the check and reservation before the relay is asked, the outcome after, stopping, extra info.

use super::*;

impl Registry {
    /// Checks a publish and reserves the stream id. A stream this session already publishes may be published
    /// again (the client restoring its media): the relay replaces the publisher and the players stay.
    pub fn prepare_publish(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        extra_info: &str,
        offer: &str,
        _now: Now,
    ) -> Prepared<PublishGrant> {
        let refuse = |code| Prepared::refused(vec![reply(id, req_id, code, None)]);
        let Some(session) = self.sessions.get(&id) else {
            return Prepared::refused(Vec::new());
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return refuse(code);
        }
        if let Err(code) = validate::stream_extra_info(extra_info) {
            return refuse(code);
        }
        if offer.is_empty() || offer.len() > limits::SDP_MAX {
            return refuse(error::COMMON_INVALID_PARAMETER);
        }
        if let Err(code) = session.grant.may_publish(&session.room_id, stream_id) {
            return refuse(code);
        }
        let already_mine = session.publishing.contains(stream_id);
        if !already_mine && session.publishing.len() >= limits::STREAMS_PER_SESSION_MAX {
            return refuse(error::PUBLISHER_CHANNEL_ALREADY_PUBLISHING);
        }
        let attempt = self.next_attempt();
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => {
                return Prepared::refused(unseated.answer(id, req_id, error::PUBLISHER_INNER_ERROR))
            }
        };
        let app_id = seat.session.app_id;
        match seat.streams.get_mut(stream_id) {
            Some(stream) if stream.owner != id => {
                return refuse(error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED)
            }
            Some(stream) => stream.attempt = Some(attempt),
            None => {
                seat.streams.insert(
                    stream_id.to_owned(),
                    Stream {
                        room_id: seat.session.room_id.clone(),
                        owner: id,
                        user: seat.session.user.clone(),
                        extra_info: extra_info.to_owned(),
                        relay: None,
                        attempt: Some(attempt),
                        players: BTreeSet::new(),
                        media_lost_at: None,
                        origin: None,
                    },
                );
                seat.room.streams.insert(stream_id.to_owned());
                seat.session.publishing.insert(stream_id.to_owned());
            }
        }
        Prepared {
            outputs: Vec::new(),
            grant: Some(PublishGrant {
                session: id,
                req_id,
                key: StreamKey {
                    app_id,
                    stream_id: stream_id.to_owned(),
                },
                attempt,
            }),
        }
    }

    /// Records the relay's answer to a publish: the publisher gets its SDP answer, the room its stream Add,
    /// and plays waiting for the stream start.
    pub fn finish_publish(
        &mut self,
        grant: PublishGrant,
        extra_info: &str,
        outcome: RelayOutcome,
    ) -> Vec<Output> {
        let id = grant.session;
        let stream_id = grant.key.stream_id.as_str();
        let Some(app) = self.apps.get_mut(&grant.key.app_id) else {
            return self.moot_publish(&grant, outcome);
        };
        let Some(stream) = app
            .streams
            .get_mut(stream_id)
            .filter(|s| s.owner == id && s.attempt == Some(grant.attempt))
        else {
            return self.moot_publish(&grant, outcome);
        };
        stream.attempt = None;
        let (relay, sdp) = match outcome {
            Ok(ok) => ok,
            Err(refusal) => {
                if !stream.is_live() {
                    let room_id = stream.room_id.clone();
                    app.streams.remove(stream_id);
                    if let Some(room) = app.rooms.get_mut(&room_id) {
                        room.streams.remove(stream_id);
                    }
                    if let Some(session) = self.sessions.get_mut(&id) {
                        session.publishing.remove(stream_id);
                    }
                }
                return vec![send(
                    id,
                    ServerMessage::Reply {
                        req_id: grant.req_id,
                        code: refusal.code,
                        message: refusal.message,
                        result: None,
                    },
                )];
            }
        };
        let was_live = stream.relay.replace(relay).is_some();
        stream.media_lost_at = None;
        let extra_changed = stream.extra_info != extra_info;
        stream.extra_info = extra_info.to_owned();
        let info = stream.info(stream_id);
        let room_id = stream.room_id.clone();
        let others = app
            .rooms
            .get(&room_id)
            .map(|r| r.others(id))
            .unwrap_or_default();
        let answer = reply(
            id,
            grant.req_id,
            error::SUCCESS,
            Some(ReplyResult::Publish { sdp }),
        );
        let clustered = self.clustered;
        if was_live {
            tracing::info!(session = id, stream_id, "stream publisher replaced");
            return reply_then_tell(answer, |outputs| {
                if extra_changed {
                    if clustered {
                        outputs.push(Output::Cluster(RoomEvent::StreamExtraInfo {
                            app_id: grant.key.app_id,
                            room_id: room_id.clone(),
                            stream: info.clone(),
                        }));
                    }
                    let msg = ServerMessage::StreamExtraInfoUpdate {
                        room_id,
                        streams: vec![info],
                    };
                    tell(outputs, others, msg);
                }
            });
        }
        tracing::info!(
            session = id,
            app_id = grant.key.app_id,
            stream_id,
            "stream published"
        );
        let mut outputs = reply_then_tell(answer, |outputs| {
            if clustered {
                outputs.push(Output::Cluster(RoomEvent::StreamAdded {
                    app_id: grant.key.app_id,
                    room_id: room_id.clone(),
                    stream: info.clone(),
                }));
            }
            let msg = ServerMessage::StreamUpdate {
                room_id,
                update_type: UpdateType::Add,
                streams: vec![info],
                reasons: Vec::new(),
            };
            tell(outputs, others, msg)
        });
        self.start_waiting_plays(&grant.key, &mut outputs);
        outputs
    }

    /// The answer to a publish that became moot while the relay worked (its session left or stopped the
    /// stream): the relay session it got is closed, and a session still there is told the publish failed.
    fn moot_publish(&self, grant: &PublishGrant, outcome: RelayOutcome) -> Vec<Output> {
        let mut outputs = Vec::new();
        if let Ok((relay, _)) = outcome {
            outputs.push(Output::CloseRelay(relay));
        }
        if self.sessions.contains_key(&grant.session) {
            outputs.push(reply(
                grant.session,
                grant.req_id,
                error::PUBLISHER_INNER_ERROR,
                None,
            ));
        }
        outputs
    }

    /// Turns the plays waiting for a stream that just appeared into starting plays.
    pub(super) fn start_waiting_plays(&mut self, key: &StreamKey, outputs: &mut Vec<Output>) {
        let Some(waiters) = self
            .apps
            .get_mut(&key.app_id)
            .and_then(|a| a.waiting.remove(&key.stream_id))
        else {
            return;
        };
        for waiter in waiters {
            let attempt = self.next_attempt();
            let Some(session) = self.sessions.get_mut(&waiter) else {
                continue;
            };
            let Some(play) = session.plays.get_mut(&key.stream_id) else {
                continue;
            };
            let Play::Waiting { offer } = std::mem::replace(
                play,
                Play::Starting {
                    attempt,
                    direct: false,
                },
            ) else {
                continue;
            };
            let mut origin = None;
            if let Some(stream) = self
                .apps
                .get_mut(&key.app_id)
                .and_then(|a| a.streams.get_mut(&key.stream_id))
            {
                stream.players.insert(waiter);
                origin = stream.origin.clone();
            }
            outputs.push(Output::StartPlay(PlayGrant {
                session: waiter,
                req_id: None,
                key: key.clone(),
                offer,
                attempt,
                origin,
            }));
        }
    }

    pub fn stop_publish(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        _now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::stream_id(stream_id) {
            return vec![reply(id, req_id, code, None)];
        }
        let answer = reply(id, req_id, error::SUCCESS, None);
        if !session.publishing.contains(stream_id) {
            // Stopping what is not published is not an error: the end state is the one asked for.
            return vec![answer];
        }
        let app_id = session.app_id;
        let outputs = reply_then_tell(answer, |outputs| {
            self.delete_streams(
                app_id,
                &[stream_id.to_owned()],
                stream_delete_reason::STOPPED,
                outputs,
            )
        });
        tracing::info!(session = id, stream_id, "stream stopped");
        outputs
    }

    pub fn set_stream_extra_info(
        &mut self,
        id: SessionId,
        req_id: u64,
        stream_id: &str,
        extra_info: &str,
        _now: Now,
    ) -> Vec<Output> {
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => return unseated.answer(id, req_id, error::PUBLISHER_INNER_ERROR),
        };
        if let Err(code) =
            validate::stream_id(stream_id).and_then(|_| validate::stream_extra_info(extra_info))
        {
            return vec![reply(id, req_id, code, None)];
        }
        let Some(stream) = seat
            .streams
            .get_mut(stream_id)
            .filter(|s| s.owner == id && s.is_live())
        else {
            return vec![reply(
                id,
                req_id,
                error::PUBLISHER_UPDATE_EXTRA_INFO_FAILED,
                None,
            )];
        };
        stream.extra_info = extra_info.to_owned();
        let room_id = seat.session.room_id.clone();
        let info = stream.info(stream_id);
        let others = seat.others();
        let app_id = seat.session.app_id;
        reply_then_tell(reply(id, req_id, error::SUCCESS, None), |outputs| {
            self.announce(outputs, || RoomEvent::StreamExtraInfo {
                app_id,
                room_id: room_id.clone(),
                stream: info.clone(),
            });
            let msg = ServerMessage::StreamExtraInfoUpdate {
                room_id,
                streams: vec![info],
            };
            tell(outputs, others, msg)
        })
    }
}
