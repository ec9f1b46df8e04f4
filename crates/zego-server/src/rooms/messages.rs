//! Room extra info, broadcast messages and custom commands.

use super::*;

impl Registry {
    pub fn set_room_extra_info(
        &mut self,
        id: SessionId,
        req_id: u64,
        key: &str,
        value: &str,
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::room_extra_info(key, value) {
            return vec![reply(id, req_id, code, None)];
        }
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        let room = app
            .rooms
            .get_mut(&session.room_id)
            .expect("a session's room exists");
        if !room.extra_info.contains_key(key)
            && room.extra_info.len() >= limits::ROOM_EXTRA_INFO_KEYS_MAX
        {
            return vec![reply(
                id,
                req_id,
                error::ROOM_EXTRA_INFO_KEY_COUNT_EXCEEDED,
                None,
            )];
        }
        if !session.room_info_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_EXTRA_INFO, None)];
        }
        let info = RoomExtraInfo {
            key: key.to_owned(),
            value: value.to_owned(),
            update_user: session.user.clone(),
            update_time_ms: now.unix_ms,
        };
        room.extra_info.insert(key.to_owned(), info.clone());
        let to: Vec<SessionId> = room.members.iter().copied().filter(|m| *m != id).collect();
        let mut outputs = vec![reply(id, req_id, error::SUCCESS, None)];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::RoomExtraInfoUpdate {
                    room_id: session.room_id.clone(),
                    infos: vec![info],
                },
            });
        }
        outputs
    }

    pub fn broadcast(
        &mut self,
        id: SessionId,
        req_id: u64,
        message: &str,
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::broadcast_message(message) {
            return vec![reply(id, req_id, code, None)];
        }
        if !session.broadcast_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::IM_BROADCAST_RATE_EXCEEDED, None)];
        }
        let app = self.apps.get_mut(&session.app_id).expect("known app");
        let room = app
            .rooms
            .get_mut(&session.room_id)
            .expect("a session's room exists");
        room.last_message_id += 1;
        let message_id = room.last_message_id;
        let to: Vec<SessionId> = room.members.iter().copied().filter(|m| *m != id).collect();
        let mut outputs = vec![reply(
            id,
            req_id,
            error::SUCCESS,
            Some(ReplyResult::BroadcastMessage { message_id }),
        )];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::BroadcastMessage {
                    room_id: session.room_id.clone(),
                    messages: vec![BroadcastMessage {
                        message_id,
                        message: message.to_owned(),
                        send_time_ms: now.unix_ms,
                        from_user: session.user.clone(),
                    }],
                },
            });
        }
        outputs
    }

    /// To the listed users of the sender's room (others are ignored), or to everyone else in it.
    pub fn custom_command(
        &mut self,
        id: SessionId,
        req_id: u64,
        command: &str,
        to_user_ids: &[String],
        now: Now,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if let Err(code) = validate::custom_command(command) {
            return vec![reply(id, req_id, code, None)];
        }
        if !session.command_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_REQUEST, None)];
        }
        let app = &self.apps[&session.app_id];
        let room = &app.rooms[&session.room_id];
        let to: Vec<SessionId> = if to_user_ids.is_empty() {
            room.members.iter().copied().filter(|m| *m != id).collect()
        } else {
            let mut to: Vec<SessionId> = to_user_ids
                .iter()
                .filter_map(|u| app.users.get(u).copied())
                .filter(|m| *m != id && room.members.contains(m))
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        };
        let mut outputs = vec![reply(id, req_id, error::SUCCESS, None)];
        if !to.is_empty() {
            outputs.push(Output::Send {
                to,
                msg: ServerMessage::CustomCommand {
                    room_id: session.room_id.clone(),
                    from_user: session.user.clone(),
                    command: command.to_owned(),
                },
            });
        }
        outputs
    }

    // ── publishing ──────────────────────────────────────────────────────────────────────────────────────────
}
