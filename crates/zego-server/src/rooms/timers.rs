//! Heartbeats, token renewal and expiry, silent sessions, and the relay's word that a peer disconnected or vanished.

use super::*;

impl Registry {
    /// Any request proves the session is alive.
    pub fn touch(&mut self, id: SessionId, now: Now) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.last_seen = now.mono;
        }
    }

    pub fn heartbeat(&mut self, id: SessionId, req_id: u64, now: Now) -> Vec<Output> {
        self.touch(id, now);
        vec![reply(
            id,
            req_id,
            error::SUCCESS,
            Some(ReplyResult::Heartbeat {
                server_time_ms: now.unix_ms,
            }),
        )]
    }

    /// A new token for the session: same checks as at login, and it must allow every stream being published.
    pub fn renew_token(
        &mut self,
        id: SessionId,
        req_id: u64,
        token: &str,
        now: Now,
    ) -> Vec<Output> {
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => return unseated.answer(id, req_id, error::ROOM_INNER_ERROR),
        };
        let session = seat.session;
        let checked = auth::check_token(
            seat.keys,
            token,
            &session.user.user_id,
            &session.room_id,
            now,
        )
        .and_then(|t| {
            let grant = Grant::Token(t);
            for stream_id in &session.publishing {
                grant
                    .may_publish(&session.room_id, stream_id)
                    .map_err(|_| error::ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE)?;
            }
            Ok(grant)
        });
        match checked {
            Ok(grant) => {
                apply_grant(session, grant, now);
                let expire = session.grant.token_expire().unwrap_or(0);
                vec![reply(
                    id,
                    req_id,
                    error::SUCCESS,
                    Some(ReplyResult::RenewToken {
                        token_expire_time: expire,
                    }),
                )]
            }
            Err(code) => vec![reply(id, req_id, code, None)],
        }
    }

    /// Runs the timers due at `now`: heartbeat timeouts, token warnings and expiries, online counts.
    pub fn handle_timeout(&mut self, now: Now) -> Vec<Output> {
        let mut outputs = Vec::new();
        let timeout = self.settings.heartbeat_timeout;
        let notice = self.settings.token_expire_notice;
        let mut silent = Vec::new();
        let mut expired = Vec::new();
        let mut sessions: Vec<(SessionId, &mut Session)> =
            self.sessions.iter_mut().map(|(id, s)| (*id, s)).collect();
        sessions.sort_unstable_by_key(|(id, _)| *id);
        for (id, session) in sessions {
            if now.mono.saturating_duration_since(session.last_seen) >= timeout {
                silent.push(id);
                continue;
            }
            let Some(expire_at) = session.token_expire_at else {
                continue;
            };
            if now.mono >= expire_at {
                expired.push(id);
            } else if !session.token_warned && now.mono + notice >= expire_at {
                session.token_warned = true;
                let remain = session
                    .grant
                    .token_expire()
                    .unwrap_or(0)
                    .saturating_sub(now.unix_ms / 1000);
                outputs.push(send(
                    id,
                    ServerMessage::TokenWillExpire {
                        room_id: session.room_id.clone(),
                        remain_seconds: remain.min(u32::MAX as u64) as u32,
                    },
                ));
            }
        }
        for id in silent {
            self.totals.heartbeat_timeouts += 1;
            self.remove_session(id, Removal::HeartbeatTimeout, &mut outputs);
        }
        for id in expired {
            self.totals.token_expiries += 1;
            self.remove_session(id, Removal::TokenExpired, &mut outputs);
        }

        // Streams whose media ended at the relay and were not published again in time.
        let grace = self.settings.heartbeat_timeout;
        let mut lost: Vec<(u32, String)> = Vec::new();
        for app in self.apps.values() {
            for (stream_id, stream) in &app.streams {
                if stream
                    .media_lost_at
                    .is_some_and(|at| now.mono.saturating_duration_since(at) >= grace)
                {
                    lost.push((app.keys.app_id, stream_id.clone()));
                }
            }
        }
        lost.sort();
        for (app_id, stream_id) in lost {
            tracing::info!(
                app_id,
                stream_id,
                "stream deleted: its media did not come back"
            );
            self.delete_streams(
                app_id,
                &[stream_id],
                stream_delete_reason::DISCONNECTED,
                &mut outputs,
            );
        }

        let interval = self.settings.online_count_interval;
        let mut apps: Vec<&mut App> = self.apps.values_mut().collect();
        apps.sort_unstable_by_key(|a| a.keys.app_id);
        for app in apps {
            for (room_id, room) in &mut app.rooms {
                if now.mono < room.next_online_count {
                    continue;
                }
                room.next_online_count += interval;
                if room.next_online_count <= now.mono {
                    room.next_online_count = now.mono + interval;
                }
                outputs.push(Output::Send {
                    to: room.members.iter().copied().collect(),
                    msg: ServerMessage::OnlineUserCount {
                        room_id: room_id.clone(),
                        count: room.members.len() as u32,
                    },
                });
            }
        }
        outputs
    }

    /// The relay ended a session on its own (ICE or DTLS failed, the peer went silent). Sessions the server
    /// closed or replaced are no longer known here and are ignored.
    ///
    /// A publisher gets the grace of one heartbeat timeout to publish again (the SDK restoring its media keeps
    /// the players); after it the stream is deleted with reason 5. A player's play is over: PlayStopped (5).
    pub fn relay_disconnected(&mut self, relay: RelaySessionId, now: Now) -> Vec<Output> {
        let mut outputs = Vec::new();
        for app in self.apps.values_mut() {
            for (stream_id, stream) in &mut app.streams {
                if stream.relay == Some(relay) && stream.media_lost_at.is_none() {
                    tracing::info!(
                        relay_session = relay,
                        stream_id,
                        "publisher media lost; waiting for it to return"
                    );
                    stream.media_lost_at = Some(now.mono);
                    return outputs;
                }
            }
        }
        let player = self.sessions.iter().find_map(|(id, s)| {
            s.plays
                .iter()
                .find(|(_, p)| **p == Play::Active { relay })
                .map(|(stream_id, _)| (*id, stream_id.clone()))
        });
        if let Some((session, stream_id)) = player {
            tracing::info!(
                relay_session = relay,
                session,
                stream_id,
                "player media lost"
            );
            self.end_play(session, &stream_id, &mut outputs);
            // The relay already forgot the session.
            outputs.retain(|o| *o != Output::CloseRelay(relay));
            outputs.push(send(
                session,
                ServerMessage::PlayStopped {
                    stream_id,
                    code: stream_delete_reason::DISCONNECTED,
                },
            ));
        }
        outputs
    }

    /// The relay lost a peer: nothing came from it for a few seconds after it had connected, as when its process
    /// was killed. A publisher's streams are deleted at once with reason 2, like a session whose heartbeat timed
    /// out, and their players are stopped. A player's play ends as in [`Registry::relay_disconnected`].
    pub fn relay_lost(&mut self, relay: RelaySessionId, now: Now) -> Vec<Output> {
        let published = self.apps.iter().find_map(|(&app_id, app)| {
            app.streams
                .iter()
                .find(|(_, s)| s.relay == Some(relay))
                .map(|(stream_id, _)| (app_id, stream_id.clone()))
        });
        let Some((app_id, stream_id)) = published else {
            return self.relay_disconnected(relay, now);
        };
        tracing::info!(
            relay_session = relay,
            app_id,
            stream_id,
            "stream deleted: its publisher's media is lost"
        );
        let mut outputs = Vec::new();
        self.delete_streams(
            app_id,
            &[stream_id],
            stream_delete_reason::HEARTBEAT_TIMEOUT,
            &mut outputs,
        );
        // The relay already forgot the session.
        outputs.retain(|o| *o != Output::CloseRelay(relay));
        outputs
    }
}
