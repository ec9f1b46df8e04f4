//! The rooms of the other nodes of a cluster: what their events change here, what this node tells them, and
//! reading the whole directory back after Redis was away.
//!
//! A remote user or stream is known with the node it is on. An event changes only what its own node placed, so
//! events that cross (a user moving from one node to another, a node cleaning up after a dead one) cannot undo a
//! newer state.

use std::collections::BTreeMap;

use super::*;

impl App {
    /// Users of the room on other nodes.
    pub(super) fn remote_member_count(&self, room_id: &str) -> usize {
        self.remote_rooms.get(room_id).map_or(0, |r| r.users.len())
    }
}

impl Registry {
    /// From now on, changes made here are also output as [`Output::Cluster`] for the other nodes.
    pub fn join_cluster(&mut self) {
        self.clustered = true;
    }

    /// Queues an event for the other nodes, when in a cluster.
    pub(super) fn announce(&self, outputs: &mut Vec<Output>, event: impl FnOnce() -> RoomEvent) {
        if self.clustered {
            outputs.push(Output::Cluster(event()));
        }
    }

    /// Queues a room message for the members on other nodes (all, or the users listed), when in a cluster.
    pub(super) fn announce_message(
        &self,
        outputs: &mut Vec<Output>,
        app_id: u32,
        room_id: String,
        to_user_ids: Option<Vec<String>>,
        message: &ServerMessage,
    ) {
        self.announce(outputs, || RoomEvent::Message {
            app_id,
            room_id,
            to_user_ids,
            message: message.clone(),
        });
    }

    /// Sessions of this node that play `key` (starting or active): the audience of a pull from another node.
    pub fn players_of(&self, key: &StreamKey) -> usize {
        self.apps
            .get(&key.app_id)
            .and_then(|app| app.streams.get(&key.stream_id))
            .map_or(0, |stream| stream.players.len())
    }

    /// Whether `key` is published on another node, and which.
    pub fn origin_of(&self, key: &StreamKey) -> Option<&str> {
        self.apps
            .get(&key.app_id)
            .and_then(|app| app.streams.get(&key.stream_id))
            .and_then(|stream| stream.origin.as_deref())
    }

    /// Streams of other nodes played here, with their node.
    pub fn remote_audiences(&self) -> Vec<(StreamKey, NodeId)> {
        let mut audiences = Vec::new();
        for (app_id, app) in &self.apps {
            for (stream_id, stream) in &app.streams {
                if let (Some(origin), false) = (&stream.origin, stream.players.is_empty()) {
                    let key = StreamKey {
                        app_id: *app_id,
                        stream_id: stream_id.clone(),
                    };
                    audiences.push((key, origin.clone()));
                }
            }
        }
        audiences
    }

    /// Whether `key` is published here and its publish completed.
    pub fn publishes_here(&self, key: &StreamKey) -> bool {
        self.apps
            .get(&key.app_id)
            .and_then(|app| app.streams.get(&key.stream_id))
            .is_some_and(|s| s.origin.is_none() && s.relay.is_some())
    }

    /// Whether `key` is published or being published here.
    pub fn has_local_stream(&self, key: &StreamKey) -> bool {
        self.apps
            .get(&key.app_id)
            .and_then(|app| app.streams.get(&key.stream_id))
            .is_some_and(|s| s.origin.is_none())
    }

    /// An event of another node.
    pub fn cluster_event(&mut self, node: &str, event: RoomEvent) -> Vec<Output> {
        let mut outputs = Vec::new();
        let (app_id, room_id) = event.room();
        let room_id = room_id.to_owned();
        if !self.apps.contains_key(&app_id) {
            return outputs;
        }
        match event {
            RoomEvent::UserJoined { user, .. } => {
                self.remote_user_joined(app_id, &room_id, user, node, &mut outputs)
            }
            RoomEvent::UserLeft { user_id, .. } => {
                self.remote_user_left(app_id, &room_id, &user_id, node, &mut outputs)
            }
            RoomEvent::StreamAdded { stream, .. } | RoomEvent::StreamExtraInfo { stream, .. } => {
                self.remote_stream(app_id, &room_id, stream, node, &mut outputs)
            }
            RoomEvent::StreamsDeleted {
                stream_ids, reason, ..
            } => self.remote_streams_deleted(app_id, &stream_ids, reason, node, &mut outputs),
            RoomEvent::RoomExtraInfo { info, .. } => {
                let Some(app) = self.apps.get_mut(&app_id) else {
                    return outputs;
                };
                let remote = app.remote_rooms.entry(room_id.clone()).or_default();
                if remote.extra_info.get(&info.key) == Some(&info) {
                    return outputs;
                }
                remote.extra_info.insert(info.key.clone(), info.clone());
                let to = self.members(app_id, &room_id, |_| true);
                let msg = ServerMessage::RoomExtraInfoUpdate {
                    room_id,
                    infos: vec![info],
                };
                tell(&mut outputs, to, msg);
            }
            RoomEvent::Message {
                to_user_ids,
                message,
                ..
            } => {
                let to = self.members(app_id, &room_id, |s| {
                    to_user_ids
                        .as_ref()
                        .is_none_or(|users| users.contains(&s.user.user_id))
                });
                tell(&mut outputs, to, message);
            }
        }
        outputs
    }

    /// A node left the cluster (its registration expired): its users leave, its streams are deleted.
    pub fn node_gone(&mut self, node: &str) -> Vec<Output> {
        let mut outputs = Vec::new();
        let mut users = Vec::new();
        let mut streams: BTreeMap<(u32, String), Vec<String>> = BTreeMap::new();
        for (app_id, app) in &self.apps {
            for (room_id, remote) in &app.remote_rooms {
                for (user_id, (_, on)) in &remote.users {
                    if on == node {
                        users.push((*app_id, room_id.clone(), user_id.clone()));
                    }
                }
            }
            for (stream_id, stream) in &app.streams {
                if stream.origin.as_deref() == Some(node) {
                    streams
                        .entry((*app_id, stream.room_id.clone()))
                        .or_default()
                        .push(stream_id.clone());
                }
            }
        }
        for ((app_id, _), ids) in streams {
            let reason = stream_delete_reason::DISCONNECTED;
            self.remote_streams_deleted(app_id, &ids, reason, node, &mut outputs);
        }
        for (app_id, room_id, user_id) in users {
            self.remote_user_left(app_id, &room_id, &user_id, node, &mut outputs);
        }
        outputs
    }

    /// What this node has placed in the cluster's rooms, as the events that place it: written to the directory
    /// again when Redis comes back (it may have lost them).
    pub fn cluster_state(&self) -> Vec<RoomEvent> {
        let mut events = Vec::new();
        for session in self.sessions.values() {
            events.push(RoomEvent::UserJoined {
                app_id: session.app_id,
                room_id: session.room_id.clone(),
                user: session.user.clone(),
            });
        }
        for (app_id, app) in &self.apps {
            for (stream_id, stream) in &app.streams {
                if stream.origin.is_none() && stream.relay.is_some() {
                    events.push(RoomEvent::StreamAdded {
                        app_id: *app_id,
                        room_id: stream.room_id.clone(),
                        stream: stream.info(stream_id),
                    });
                }
            }
            for (room_id, room) in &app.rooms {
                for info in room.extra_info.values() {
                    events.push(RoomEvent::RoomExtraInfo {
                        app_id: *app_id,
                        room_id: room_id.clone(),
                        info: info.clone(),
                    });
                }
            }
        }
        events
    }

    /// The whole directory as read back from Redis (the events that place what other nodes placed): what is new
    /// is added and local members hear of it. Nothing is removed here: right after Redis restarts, the other nodes
    /// may not have written their state again yet; what a node no longer has goes with its events, or with
    /// [`Registry::node_gone`].
    pub fn cluster_resync(&mut self, directory: Vec<(NodeId, RoomEvent)>) -> Vec<Output> {
        let mut outputs = Vec::new();
        for (node, event) in directory {
            outputs.extend(self.cluster_event(&node, event));
        }
        outputs
    }

    /// All that `node` has placed (it just joined the directory again): what is known of it here and not listed
    /// is gone.
    pub fn node_state(
        &mut self,
        node: &str,
        users: &BTreeSet<(u32, String, String)>,
        streams: &BTreeSet<(u32, String)>,
    ) -> Vec<Output> {
        let mut stale_users = Vec::new();
        let mut stale_streams = Vec::new();
        for (app_id, app) in &self.apps {
            for (room_id, remote) in &app.remote_rooms {
                for (user_id, (_, on)) in &remote.users {
                    let key = (*app_id, room_id.clone(), user_id.clone());
                    if on == node && !users.contains(&key) {
                        stale_users.push(key);
                    }
                }
            }
            for (stream_id, stream) in &app.streams {
                let key = (*app_id, stream_id.clone());
                if stream.origin.as_deref() == Some(node) && !streams.contains(&key) {
                    stale_streams.push(key);
                }
            }
        }
        let mut outputs = Vec::new();
        for (app_id, stream_id) in stale_streams {
            let reason = stream_delete_reason::DISCONNECTED;
            self.remote_streams_deleted(app_id, &[stream_id], reason, node, &mut outputs);
        }
        for (app_id, room_id, user_id) in stale_users {
            self.remote_user_left(app_id, &room_id, &user_id, node, &mut outputs);
        }
        outputs
    }

    /// A local login of `user_id`: what another node had placed of that user is forgotten here (that node kicks
    /// its session when it hears of this login, and its members hear of it then).
    pub(super) fn forget_remote_user(
        &mut self,
        app_id: u32,
        user_id: &str,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get(&app_id) else {
            return;
        };
        let placed: Vec<(String, NodeId)> = app
            .remote_rooms
            .iter()
            .filter_map(|(room_id, r)| Some((room_id.clone(), r.users.get(user_id)?.1.clone())))
            .collect();
        for (room_id, node) in placed {
            self.remote_user_left(app_id, &room_id, user_id, &node, outputs);
        }
    }

    /// The local sessions of a room that `accept`s, in the order they joined.
    fn members(
        &self,
        app_id: u32,
        room_id: &str,
        accept: impl Fn(&Session) -> bool,
    ) -> Vec<SessionId> {
        let Some(room) = self.apps.get(&app_id).and_then(|a| a.rooms.get(room_id)) else {
            return Vec::new();
        };
        room.members
            .iter()
            .copied()
            .filter(|m| self.sessions.get(m).is_some_and(&accept))
            .collect()
    }

    fn remote_user_joined(
        &mut self,
        app_id: u32,
        room_id: &str,
        user: User,
        node: &str,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get(&app_id) else {
            return;
        };
        // One user id per app in the whole cluster: the earlier session, here, is kicked.
        if let Some(local) = app.users.get(&user.user_id).copied() {
            self.totals.same_user_kicks += 1;
            self.remove_session(local, Removal::SameUserLoggedIn, outputs);
        }
        // Known elsewhere (another room, or placed by another node): it moved.
        let Some(app) = self.apps.get(&app_id) else {
            return;
        };
        let known: Vec<(String, NodeId)> = app
            .remote_rooms
            .iter()
            .filter_map(|(r, remote)| Some((r.clone(), remote.users.get(&user.user_id)?.clone())))
            .filter(|(r, (known, on))| !(r == room_id && *known == user && on == node))
            .map(|(r, (_, on))| (r, on))
            .collect();
        let already = app
            .remote_rooms
            .get(room_id)
            .and_then(|r| r.users.get(&user.user_id))
            .is_some_and(|(known, on)| *known == user && on == node);
        if already {
            return;
        }
        for (other_room, on) in known {
            if other_room != room_id {
                self.remote_user_left(app_id, &other_room, &user.user_id, &on, outputs);
            }
        }
        let Some(app) = self.apps.get_mut(&app_id) else {
            return;
        };
        let remote = app.remote_rooms.entry(room_id.to_owned()).or_default();
        let was_here = remote
            .users
            .insert(user.user_id.clone(), (user.clone(), node.to_owned()))
            .is_some();
        if was_here {
            return;
        }
        let to = self.members(app_id, room_id, |s| s.notify_users);
        let msg = ServerMessage::UserUpdate {
            room_id: room_id.to_owned(),
            update_type: UpdateType::Add,
            users: vec![user],
        };
        tell(outputs, to, msg);
    }

    fn remote_user_left(
        &mut self,
        app_id: u32,
        room_id: &str,
        user_id: &str,
        node: &str,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get_mut(&app_id) else {
            return;
        };
        let Some(remote) = app.remote_rooms.get_mut(room_id) else {
            return;
        };
        if remote.users.get(user_id).is_none_or(|(_, on)| on != node) {
            return;
        }
        let Some((user, _)) = remote.users.remove(user_id) else {
            return;
        };
        if remote.is_empty() {
            app.remote_rooms.remove(room_id);
        }
        let to = self.members(app_id, room_id, |s| s.notify_users);
        let msg = ServerMessage::UserUpdate {
            room_id: room_id.to_owned(),
            update_type: UpdateType::Delete,
            users: vec![user],
        };
        tell(outputs, to, msg);
    }

    /// A stream published on `node` appeared, or its extra info changed.
    fn remote_stream(
        &mut self,
        app_id: u32,
        room_id: &str,
        info: StreamInfo,
        node: &str,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get_mut(&app_id) else {
            return;
        };
        let stream_id = info.stream_id.clone();
        match app.streams.get_mut(&stream_id) {
            Some(stream) if stream.origin.as_deref() == Some(node) && stream.room_id == room_id => {
                if stream.extra_info == info.extra_info && stream.user == info.user {
                    return;
                }
                stream.extra_info = info.extra_info.clone();
                stream.user = info.user.clone();
                let to = self.members(app_id, room_id, |_| true);
                let msg = ServerMessage::StreamExtraInfoUpdate {
                    room_id: room_id.to_owned(),
                    streams: vec![info],
                };
                tell(outputs, to, msg);
                return;
            }
            Some(stream) if stream.origin.is_none() => {
                // The directory gives a stream id one owner; this is the claim of a node that lost its lease.
                tracing::warn!(
                    app_id,
                    stream_id,
                    node,
                    "another node announces a stream published here"
                );
                return;
            }
            Some(stream) => {
                // It moved to another node (or room): deleted where it was, added where it is.
                let (old_node, old_room) = (stream.origin.clone(), stream.room_id.clone());
                if let Some(old_node) = old_node {
                    let reason = stream_delete_reason::STOPPED;
                    self.remote_streams_deleted(
                        app_id,
                        std::slice::from_ref(&stream_id),
                        reason,
                        &old_node,
                        outputs,
                    );
                }
                tracing::debug!(app_id, stream_id, from = %old_room, "stream moved");
            }
            None => {}
        }
        let Some(app) = self.apps.get_mut(&app_id) else {
            return;
        };
        app.streams
            .insert(stream_id.clone(), Stream::remote(room_id, &info, node));
        app.remote_rooms
            .entry(room_id.to_owned())
            .or_default()
            .streams
            .insert(stream_id.clone());
        let to = self.members(app_id, room_id, |_| true);
        let msg = ServerMessage::StreamUpdate {
            room_id: room_id.to_owned(),
            update_type: UpdateType::Add,
            streams: vec![info],
            reasons: Vec::new(),
        };
        tell(outputs, to, msg);
        let key = StreamKey { app_id, stream_id };
        self.start_waiting_plays(&key, outputs);
    }

    fn remote_streams_deleted(
        &mut self,
        app_id: u32,
        stream_ids: &[String],
        reason: u32,
        node: &str,
        outputs: &mut Vec<Output>,
    ) {
        let Some(app) = self.apps.get(&app_id) else {
            return;
        };
        let ids: Vec<String> = stream_ids
            .iter()
            .filter(|id| {
                app.streams
                    .get(*id)
                    .is_some_and(|s| s.origin.as_deref() == Some(node))
            })
            .cloned()
            .collect();
        let rooms: BTreeSet<String> = ids
            .iter()
            .filter_map(|id| app.streams.get(id).map(|s| s.room_id.clone()))
            .collect();
        self.delete_streams(app_id, &ids, reason, outputs);
        if let Some(app) = self.apps.get_mut(&app_id) {
            for room_id in rooms {
                if app
                    .remote_rooms
                    .get(&room_id)
                    .is_some_and(RemoteRoom::is_empty)
                {
                    app.remote_rooms.remove(&room_id);
                }
            }
        }
    }
}
