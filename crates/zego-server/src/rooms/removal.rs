//! A session leaving (logout, kick, timeout): its plays end, its streams are deleted, the room is told.

use super::*;

impl Registry {
    /// Takes a session out of everything: its plays, its streams (with `removal`'s reason), its room.
    pub(super) fn remove_session(
        &mut self,
        id: SessionId,
        removal: Removal,
        outputs: &mut Vec<Output>,
    ) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let app_id = session.app_id;
        let room_id = session.room_id.clone();
        let user = session.user.clone();
        let plays: Vec<String> = session.plays.keys().cloned().collect();
        let published: Vec<String> = session.publishing.iter().cloned().collect();
        tracing::info!(session = id, app_id, room_id = %room_id, user_id = %user.user_id, ?removal, "session ends");

        if let Some(code) = removal.kick_code() {
            outputs.push(send(
                id,
                ServerMessage::Kicked {
                    room_id: room_id.clone(),
                    code,
                },
            ));
        }
        outputs.push(Output::Detach {
            session: id,
            close: match removal {
                Removal::Logout => None,
                Removal::HeartbeatTimeout => Some(CloseReason::HeartbeatTimeout),
                Removal::SameUserLoggedIn | Removal::TokenExpired => Some(CloseReason::Kicked),
            },
        });

        for stream_id in plays {
            self.end_play(id, &stream_id, outputs);
        }
        self.delete_streams(app_id, &published, removal.stream_reason(), outputs);

        if let Some(session) = self.sessions.remove(&id) {
            self.by_resume_token.remove(&session.resume_token);
        }
        let Some(app) = self.apps.get_mut(&app_id) else {
            tracing::error!(session = id, app_id, "session of an unknown app");
            return;
        };
        if app.users.get(&user.user_id) == Some(&id) {
            app.users.remove(&user.user_id);
        }
        let Some(room) = app.rooms.get_mut(&room_id) else {
            return;
        };
        room.members.remove(&id);
        let notify: Vec<SessionId> = room
            .members
            .iter()
            .copied()
            .filter(|m| self.sessions.get(m).is_some_and(|s| s.notify_users))
            .collect();
        if self.clustered {
            outputs.push(Output::Cluster(RoomEvent::UserLeft {
                app_id,
                room_id: room_id.clone(),
                user_id: user.user_id.clone(),
            }));
        }
        let msg = ServerMessage::UserUpdate {
            room_id: room_id.clone(),
            update_type: UpdateType::Delete,
            users: vec![user],
        };
        tell(outputs, notify, msg);
        if room.members.is_empty() {
            app.rooms.remove(&room_id);
            tracing::debug!(app_id, room_id = %room_id, "room closed");
        }
    }

    /// Ends one play of a session, whatever its state.
    pub(super) fn end_play(
        &mut self,
        id: SessionId,
        stream_id: &str,
        outputs: &mut Vec<Output>,
    ) -> bool {
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Some(play) = session.plays.remove(stream_id) else {
            return false;
        };
        if let Play::Active { relay } = play {
            outputs.push(Output::CloseRelay(relay));
        }
        let Some(app) = self.apps.get_mut(&session.app_id) else {
            tracing::error!(
                session = id,
                app_id = session.app_id,
                "session of an unknown app"
            );
            return true;
        };
        match play {
            Play::Waiting { .. } => {
                if let Some(waiters) = app.waiting.get_mut(stream_id) {
                    waiters.remove(&id);
                    if waiters.is_empty() {
                        app.waiting.remove(stream_id);
                    }
                }
            }
            Play::Starting { .. } | Play::Active { .. } => {
                if let Some(stream) = app.streams.get_mut(stream_id) {
                    stream.players.remove(&id);
                }
            }
        }
        true
    }

    /// Deletes streams of one app (all of one owner, or all of one other node): players are stopped, the room
    /// hears one Delete, and the other nodes of a cluster hear of the ones published here.
    pub(super) fn delete_streams(
        &mut self,
        app_id: u32,
        stream_ids: &[String],
        reason: u32,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get_mut(&app_id) else {
            tracing::error!(app_id, "streams of an unknown app");
            return;
        };
        let mut deleted: Vec<(String, StreamInfo)> = Vec::new();
        let mut owner = None;
        for stream_id in stream_ids {
            let Some(stream) = app.streams.remove(stream_id) else {
                continue;
            };
            owner = Some(stream.owner);
            if let Some(room) = app.rooms.get_mut(&stream.room_id) {
                room.streams.remove(stream_id);
            }
            if let Some(remote) = app.remote_rooms.get_mut(&stream.room_id) {
                remote.streams.remove(stream_id);
            }
            if let Some(session) = self.sessions.get_mut(&stream.owner) {
                session.publishing.remove(stream_id);
            }
            if stream.origin.is_none() {
                let Some(publisher) = stream.relay else {
                    // Never visible: the publish still in flight finds the stream gone and closes its relay
                    // session.
                    continue;
                };
                outputs.push(Output::CloseRelay(publisher));
            }
            for player in &stream.players {
                let Some(session) = self.sessions.get_mut(player) else {
                    continue;
                };
                match session.plays.remove(stream_id) {
                    Some(Play::Active { relay }) => outputs.push(Output::CloseRelay(relay)),
                    // Its request is still unanswered: the relay's answer finds the play gone and replies.
                    Some(Play::Starting { direct: true, .. }) => continue,
                    _ => {}
                }
                outputs.push(send(
                    *player,
                    ServerMessage::PlayStopped {
                        stream_id: stream_id.clone(),
                        code: reason,
                    },
                ));
            }
            deleted.push((stream.room_id.clone(), stream.info(stream_id)));
        }
        let Some(owner) = owner else { return };
        // One owner means one room.
        let Some((room_id, _)) = deleted.first() else {
            return;
        };
        let room_id = room_id.clone();
        if self.clustered && owner != NO_SESSION {
            outputs.push(Output::Cluster(RoomEvent::StreamsDeleted {
                app_id,
                room_id: room_id.clone(),
                stream_ids: deleted.iter().map(|(_, s)| s.stream_id.clone()).collect(),
                reason,
            }));
        }
        let to = app
            .rooms
            .get(&room_id)
            .map(|r| r.others(owner))
            .unwrap_or_default();
        if to.is_empty() {
            return;
        }
        let (reasons, streams) = deleted
            .into_iter()
            .map(|(_, info)| {
                (
                    StreamDeleteReason {
                        stream_id: info.stream_id.clone(),
                        code: reason,
                    },
                    info,
                )
            })
            .unzip();
        outputs.push(Output::Send {
            to,
            msg: ServerMessage::StreamUpdate {
                room_id,
                update_type: UpdateType::Delete,
                streams,
                reasons,
            },
        });
    }
}
