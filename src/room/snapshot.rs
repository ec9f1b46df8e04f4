//! What this client knows of its room: the other users, the others' streams and the room extra info.
//!
//! The login reply is the first snapshot; events update it. After a reconnect the new login reply is compared
//! with it, so the app hears exactly what changed while the connection was down, as ordinary Add/Delete
//! increments. The local user and its own streams are never part of it, as in the original.

use std::collections::BTreeMap;

use zego_protocol::message::{
    stream_delete_reason, RoomExtraInfo, StreamDeleteReason, StreamInfo, UpdateType, User,
};

use super::events;
use crate::event::Event;

/// The delete reason of streams that vanished while the connection was down. When the server kept the session,
/// the room went on without us and "stopped" (1) is what most deletes are. When it did not (the server
/// restarted, or forgot us), the room was rebuilt without the streams whose publishers lost their connection
/// along with ours: "disconnected" (5); they come back as Add when their publishers publish again.
pub(crate) fn reason_for_gone(resumed: bool) -> u32 {
    if resumed {
        stream_delete_reason::STOPPED
    } else {
        stream_delete_reason::DISCONNECTED
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RoomSnapshot {
    users: BTreeMap<String, User>,
    streams: BTreeMap<String, StreamInfo>,
    extra_info: BTreeMap<String, RoomExtraInfo>,
}

impl RoomSnapshot {
    /// The snapshot of a login reply, seen by `me`.
    pub fn from_login(
        me: &str,
        users: &[User],
        streams: &[StreamInfo],
        extra_info: &[RoomExtraInfo],
    ) -> Self {
        RoomSnapshot {
            users: users
                .iter()
                .filter(|u| u.user_id != me)
                .map(|u| (u.user_id.clone(), u.clone()))
                .collect(),
            streams: streams
                .iter()
                .filter(|s| s.user.user_id != me)
                .map(|s| (s.stream_id.clone(), s.clone()))
                .collect(),
            extra_info: extra_info
                .iter()
                .map(|i| (i.key.clone(), i.clone()))
                .collect(),
        }
    }

    /// The events of a first login: everyone and everything present, as one Add each.
    pub fn first_events(&self, room_id: &str, notify_users: bool) -> Vec<Event> {
        RoomSnapshot::default().diff(self, room_id, notify_users, stream_delete_reason::STOPPED)
    }

    /// The events that turn `self` into `next`; streams that are gone are deleted with `gone_reason`, since a
    /// client that was away does not know why each went (see [`reason_for_gone`]).
    pub fn diff(
        &self,
        next: &RoomSnapshot,
        room_id: &str,
        notify_users: bool,
        gone_reason: u32,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        if notify_users {
            let gone: Vec<User> = self
                .users
                .values()
                .filter(|u| !next.users.contains_key(&u.user_id))
                .cloned()
                .collect();
            let new: Vec<User> = next
                .users
                .values()
                .filter(|u| !self.users.contains_key(&u.user_id))
                .cloned()
                .collect();
            if !gone.is_empty() {
                out.push(Event::RoomUserUpdate {
                    room_id: room_id.to_owned(),
                    update_type: UpdateType::Delete,
                    users: gone,
                });
            }
            if !new.is_empty() {
                out.push(Event::RoomUserUpdate {
                    room_id: room_id.to_owned(),
                    update_type: UpdateType::Add,
                    users: new,
                });
            }
        }

        let gone: Vec<StreamInfo> = self
            .streams
            .values()
            .filter(|s| !next.streams.contains_key(&s.stream_id))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let reasons: Vec<StreamDeleteReason> = gone
                .iter()
                .map(|s| StreamDeleteReason {
                    stream_id: s.stream_id.clone(),
                    code: gone_reason,
                })
                .collect();
            out.push(events::stream_update(
                room_id,
                UpdateType::Delete,
                gone,
                &reasons,
            ));
        }
        let new: Vec<StreamInfo> = next
            .streams
            .values()
            .filter(|s| !self.streams.contains_key(&s.stream_id))
            .cloned()
            .collect();
        if !new.is_empty() {
            out.push(events::stream_update(room_id, UpdateType::Add, new, &[]));
        }
        let changed: Vec<StreamInfo> = next
            .streams
            .values()
            .filter(|s| {
                self.streams
                    .get(&s.stream_id)
                    .is_some_and(|old| old.extra_info != s.extra_info)
            })
            .cloned()
            .collect();
        if !changed.is_empty() {
            out.push(Event::RoomStreamExtraInfoUpdate {
                room_id: room_id.to_owned(),
                streams: changed,
            });
        }

        let infos: Vec<RoomExtraInfo> = next
            .extra_info
            .values()
            .filter(|i| self.extra_info.get(&i.key).is_none_or(|old| old != *i))
            .cloned()
            .collect();
        if !infos.is_empty() {
            out.push(Event::RoomExtraInfoUpdate {
                room_id: room_id.to_owned(),
                infos,
            });
        }
        out
    }

    /// Applies a user update; returns the users worth reporting (never the local user).
    pub fn apply_users(
        &mut self,
        me: &str,
        update_type: UpdateType,
        users: Vec<User>,
    ) -> Vec<User> {
        let users: Vec<User> = users.into_iter().filter(|u| u.user_id != me).collect();
        for user in &users {
            match update_type {
                UpdateType::Add => {
                    self.users.insert(user.user_id.clone(), user.clone());
                }
                UpdateType::Delete => {
                    self.users.remove(&user.user_id);
                }
            }
        }
        users
    }

    /// Applies a stream update; returns the streams worth reporting (never the local user's own).
    pub fn apply_streams(
        &mut self,
        me: &str,
        update_type: UpdateType,
        streams: Vec<StreamInfo>,
    ) -> Vec<StreamInfo> {
        let streams: Vec<StreamInfo> = streams
            .into_iter()
            .filter(|s| s.user.user_id != me)
            .collect();
        for stream in &streams {
            match update_type {
                UpdateType::Add => {
                    self.streams
                        .insert(stream.stream_id.clone(), stream.clone());
                }
                UpdateType::Delete => {
                    self.streams.remove(&stream.stream_id);
                }
            }
        }
        streams
    }

    pub fn apply_stream_extra_info(
        &mut self,
        me: &str,
        streams: Vec<StreamInfo>,
    ) -> Vec<StreamInfo> {
        let streams: Vec<StreamInfo> = streams
            .into_iter()
            .filter(|s| s.user.user_id != me)
            .collect();
        for stream in &streams {
            self.streams
                .insert(stream.stream_id.clone(), stream.clone());
        }
        streams
    }

    pub fn apply_room_extra_info(&mut self, infos: &[RoomExtraInfo]) {
        for info in infos {
            self.extra_info.insert(info.key.clone(), info.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> User {
        User {
            user_id: id.into(),
            user_name: id.to_uppercase(),
        }
    }

    fn stream(id: &str, owner: &str, extra: &str) -> StreamInfo {
        StreamInfo {
            user: user(owner),
            stream_id: id.into(),
            extra_info: extra.into(),
        }
    }

    #[test]
    fn first_login_excludes_me_and_my_streams() {
        let snap = RoomSnapshot::from_login(
            "me",
            &[user("me"), user("a")],
            &[stream("mine", "me", ""), stream("s1", "a", "")],
            &[],
        );
        let events = snap.first_events("r", true);
        assert_eq!(events.len(), 2);
        match &events[0] {
            Event::RoomUserUpdate {
                update_type: UpdateType::Add,
                users,
                ..
            } => assert_eq!(users, &[user("a")]),
            other => panic!("{other:?}"),
        }
        match &events[1] {
            Event::RoomStreamUpdate {
                update_type: UpdateType::Add,
                streams,
                ..
            } => {
                assert_eq!(streams, &[stream("s1", "a", "")])
            }
            other => panic!("{other:?}"),
        }
        // Without user notifications only the streams are told.
        assert_eq!(snap.first_events("r", false).len(), 1);
        // An empty room tells nothing.
        assert!(RoomSnapshot::from_login("me", &[user("me")], &[], &[])
            .first_events("r", true)
            .is_empty());
    }

    #[test]
    fn reconnect_reports_only_what_changed() {
        let before = RoomSnapshot::from_login(
            "me",
            &[user("a"), user("b")],
            &[stream("s1", "a", "x"), stream("s2", "b", "")],
            &[],
        );
        let after = RoomSnapshot::from_login(
            "me",
            &[user("a"), user("c")],
            &[stream("s1", "a", "y"), stream("s3", "c", "")],
            &[],
        );
        let events = before.diff(&after, "r", true, reason_for_gone(true));
        let kinds: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::RoomUserUpdate {
                    update_type, users, ..
                } => {
                    format!(
                        "user {update_type:?} {}",
                        users
                            .iter()
                            .map(|u| u.user_id.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
                Event::RoomStreamUpdate {
                    update_type,
                    streams,
                    extended_data,
                    ..
                } => {
                    let data: serde_json::Value = serde_json::from_str(extended_data).unwrap();
                    format!(
                        "stream {update_type:?} {} {}",
                        streams
                            .iter()
                            .map(|s| s.stream_id.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        data.get("stream_delete_reason")
                            .map_or("-".to_owned(), |r| format!(
                                "{}:{}",
                                r[0]["stream_id"], r[0]["code"]
                            ))
                    )
                }
                Event::RoomStreamExtraInfoUpdate { streams, .. } => {
                    format!("extra {}", streams[0].extra_info)
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "user Delete b",
                "user Add c",
                r#"stream Delete s2 "s2":1"#,
                "stream Add s3 -",
                "extra y",
            ]
        );
        assert!(after.diff(&after, "r", true, 1).is_empty());
    }

    #[test]
    fn streams_lost_with_the_server_are_deleted_as_disconnected() {
        let before = RoomSnapshot::from_login("me", &[user("a")], &[stream("s1", "a", "")], &[]);
        let after = RoomSnapshot::from_login("me", &[], &[], &[]);
        let events = before.diff(&after, "r", false, reason_for_gone(false));
        match &events[..] {
            [Event::RoomStreamUpdate {
                update_type: UpdateType::Delete,
                extended_data,
                ..
            }] => assert_eq!(
                extended_data,
                r#"{"stream_delete_reason":[{"code":5,"stream_id":"s1"}]}"#
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn increments_keep_the_snapshot_current() {
        let mut snap = RoomSnapshot::default();
        assert_eq!(
            snap.apply_users("me", UpdateType::Add, vec![user("me"), user("a")]),
            vec![user("a")]
        );
        assert!(snap
            .apply_streams("me", UpdateType::Add, vec![stream("mine", "me", "")])
            .is_empty());
        snap.apply_streams("me", UpdateType::Add, vec![stream("s1", "a", "")]);
        let expected = RoomSnapshot::from_login("me", &[user("a")], &[stream("s1", "a", "")], &[]);
        assert_eq!(snap, expected);
        snap.apply_streams("me", UpdateType::Delete, vec![stream("s1", "a", "")]);
        snap.apply_users("me", UpdateType::Delete, vec![user("a")]);
        assert_eq!(snap, RoomSnapshot::default());
    }
}
