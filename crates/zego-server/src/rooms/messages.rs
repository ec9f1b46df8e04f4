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
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => return unseated.answer(id, req_id, error::ROOM_INNER_ERROR),
        };
        if let Err(code) = validate::room_extra_info(key, value) {
            return vec![reply(id, req_id, code, None)];
        }
        if !seat.room.extra_info.contains_key(key)
            && seat.room.extra_info.len() >= limits::ROOM_EXTRA_INFO_KEYS_MAX
        {
            return vec![reply(
                id,
                req_id,
                error::ROOM_EXTRA_INFO_KEY_COUNT_EXCEEDED,
                None,
            )];
        }
        if !seat.session.room_info_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_EXTRA_INFO, None)];
        }
        let info = RoomExtraInfo {
            key: key.to_owned(),
            value: value.to_owned(),
            update_user: seat.session.user.clone(),
            update_time_ms: now.unix_ms,
        };
        seat.room.extra_info.insert(key.to_owned(), info.clone());
        let app_id = seat.session.app_id;
        let room_id = seat.session.room_id.clone();
        let others = seat.others();
        reply_then_tell(reply(id, req_id, error::SUCCESS, None), |outputs| {
            self.announce(outputs, || RoomEvent::RoomExtraInfo {
                app_id,
                room_id: room_id.clone(),
                info: info.clone(),
            });
            let msg = ServerMessage::RoomExtraInfoUpdate {
                room_id,
                infos: vec![info],
            };
            tell(outputs, others, msg)
        })
    }

    pub fn broadcast(
        &mut self,
        id: SessionId,
        req_id: u64,
        message: &str,
        now: Now,
    ) -> Vec<Output> {
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => return unseated.answer(id, req_id, error::ROOM_INNER_ERROR),
        };
        if let Err(code) = validate::broadcast_message(message) {
            return vec![reply(id, req_id, code, None)];
        }
        if !seat.session.broadcast_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::IM_BROADCAST_RATE_EXCEEDED, None)];
        }
        seat.room.last_message_id += 1;
        let message_id = seat.room.last_message_id;
        let msg = ServerMessage::BroadcastMessage {
            room_id: seat.session.room_id.clone(),
            messages: vec![BroadcastMessage {
                message_id,
                message: message.to_owned(),
                send_time_ms: now.unix_ms,
                from_user: seat.session.user.clone(),
            }],
        };
        let answer = reply(
            id,
            req_id,
            error::SUCCESS,
            Some(ReplyResult::BroadcastMessage { message_id }),
        );
        let (app_id, room_id, others) = (
            seat.session.app_id,
            seat.session.room_id.clone(),
            seat.others(),
        );
        reply_then_tell(answer, |outputs| {
            self.announce_message(outputs, app_id, room_id, None, &msg);
            tell(outputs, others, msg)
        })
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
        let seat = match self.seat(id) {
            Ok(seat) => seat,
            Err(unseated) => return unseated.answer(id, req_id, error::ROOM_INNER_ERROR),
        };
        if let Err(code) = validate::custom_command(command) {
            return vec![reply(id, req_id, code, None)];
        }
        if !seat.session.command_rate.try_take(now.mono) {
            return vec![reply(id, req_id, error::ROOM_RATE_LIMITED_REQUEST, None)];
        }
        let to: Vec<SessionId> = if to_user_ids.is_empty() {
            seat.others()
        } else {
            let mut to: Vec<SessionId> = to_user_ids
                .iter()
                .filter_map(|u| seat.users.get(u).copied())
                .filter(|m| *m != id && seat.room.members.contains(m))
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        };
        let msg = ServerMessage::CustomCommand {
            room_id: seat.session.room_id.clone(),
            from_user: seat.session.user.clone(),
            command: command.to_owned(),
        };
        let app_id = seat.session.app_id;
        let room_id = seat.session.room_id.clone();
        // Users of other nodes: all of them, or those listed that are not here.
        let remote_to: Option<Vec<String>> = (!to_user_ids.is_empty()).then(|| {
            to_user_ids
                .iter()
                .filter(|u| !seat.users.contains_key(*u))
                .cloned()
                .collect()
        });
        reply_then_tell(reply(id, req_id, error::SUCCESS, None), |outputs| {
            if remote_to.as_ref().is_none_or(|users| !users.is_empty()) {
                self.announce_message(outputs, app_id, room_id, remote_to, &msg);
            }
            tell(outputs, to, msg)
        })
    }
}
