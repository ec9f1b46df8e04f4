//! What the nodes of a cluster tell each other through Redis: room events over pub/sub, and the directory's keys
//! (which node owns each stream, each room's users, streams and extra info, the nodes and their load).
//!
//! Every node writes only what it owns (its sessions, its streams, the room extra info its users set) and publishes
//! each change on the room's channel; every node reads every room's channel, so it knows the whole cluster's rooms
//! and can answer a login with the same snapshot one server would give. docs/cluster.md describes the layout.

use serde::{Deserialize, Serialize};

use crate::message::{RoomExtraInfo, ServerMessage, StreamInfo, User};

/// A node's name in the cluster, unique among the running nodes.
pub type NodeId = String;

/// Every key and channel starts with this.
pub const PREFIX: &str = "zego:";

/// Room events are published on `zego:room:{app_id}:{room_id}`; nodes subscribe to this pattern.
pub const ROOM_CHANNEL_PATTERN: &str = "zego:room:*";

/// The channel of [`NodeState`]s.
pub const STATE_CHANNEL: &str = "zego:state";

/// The set of node ids that have registered.
pub const NODES_KEY: &str = "zego:nodes";

/// How long a node's registration and its stream owner keys live without a refresh, in milliseconds. A node that
/// dies is noticed by the others when its registration expires.
pub const LEASE_MS: u64 = 6_000;

/// How often a node refreshes its leases and checks the others', in milliseconds.
pub const REFRESH_MS: u64 = 2_000;

/// The channel of a room's events.
pub fn room_channel(app_id: u32, room_id: &str) -> String {
    format!("zego:room:{app_id}:{room_id}")
}

/// The room a channel name carries (the room id may itself contain `:`).
pub fn parse_room_channel(channel: &str) -> Option<(u32, &str)> {
    let rest = channel.strip_prefix("zego:room:")?;
    let (app, room) = rest.split_once(':')?;
    Some((app.parse().ok()?, room))
}

/// Hash of a room's users: user id → [`Placed<User>`].
pub fn users_key(app_id: u32, room_id: &str) -> String {
    format!("zego:users:{app_id}:{room_id}")
}

/// Hash of a room's streams: stream id → [`Placed<StreamInfo>`].
pub fn streams_key(app_id: u32, room_id: &str) -> String {
    format!("zego:streams:{app_id}:{room_id}")
}

/// Hash of a room's extra info: key → [`RoomExtraInfo`].
pub fn extra_key(app_id: u32, room_id: &str) -> String {
    format!("zego:extra:{app_id}:{room_id}")
}

/// The kinds of room hash, for reading the whole directory back: `(kind, app_id, room_id)` of a key.
pub fn parse_room_key(key: &str) -> Option<(RoomKey, u32, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (kind, rest) = rest.split_once(':')?;
    let kind = match kind {
        "users" => RoomKey::Users,
        "streams" => RoomKey::Streams,
        "extra" => RoomKey::Extra,
        _ => return None,
    };
    let (app, room) = rest.split_once(':')?;
    Some((kind, app.parse().ok()?, room))
}

/// What a room hash holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKey {
    Users,
    Streams,
    Extra,
}

/// The owner of a stream id: the node whose id is its value. Set if absent with a lease of [`LEASE_MS`], and
/// refreshed by the owner, so a stream id is published once in the whole cluster (1003028 for a second publisher).
pub fn owner_key(app_id: u32, stream_id: &str) -> String {
    format!("zego:owner:{app_id}:{stream_id}")
}

/// A node's registration: a [`NodeInfo`] with a lease of [`LEASE_MS`].
pub fn node_key(node: &str) -> String {
    format!("zego:node:{node}")
}

/// A node as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: NodeId,
    /// Where the others reach its HTTP endpoints (`http://host:port`), e.g. to pull a stream.
    pub http: String,
    /// Its signaling URL, for clients choosing a node.
    pub ws: String,
    /// Its load, for placing clients.
    pub load: NodeLoad,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Signaling sessions.
    pub sessions: u64,
    /// Relay sessions sending media to players.
    pub viewers: u64,
    /// Media sent to players, in bits per second over the last refresh period.
    pub egress_bps: u64,
}

/// Something placed on a node: a user (logged in there) or a stream (published there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed<T> {
    pub node: NodeId,
    #[serde(flatten)]
    pub item: T,
}

/// What is published on a room's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub node: NodeId,
    pub event: RoomEvent,
}

/// Everything a node has placed in the rooms, published when it (re)joins the directory: the other nodes forget
/// what they knew of it and is not listed (it went while Redis was away and came back empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: NodeId,
    /// `(app_id, room_id, user_id)`.
    pub users: Vec<(u32, String, String)>,
    /// `(app_id, stream_id)`.
    pub streams: Vec<(u32, String)>,
}

impl NodeState {
    /// What the events that place a node's state ([`RoomEvent::UserJoined`], [`RoomEvent::StreamAdded`]) place.
    pub fn of(node: &str, events: &[RoomEvent]) -> NodeState {
        let mut state = NodeState {
            node: node.to_owned(),
            users: Vec::new(),
            streams: Vec::new(),
        };
        for event in events {
            match event {
                RoomEvent::UserJoined {
                    app_id,
                    room_id,
                    user,
                } => state
                    .users
                    .push((*app_id, room_id.clone(), user.user_id.clone())),
                RoomEvent::StreamAdded { app_id, stream, .. } => {
                    state.streams.push((*app_id, stream.stream_id.clone()))
                }
                _ => {}
            }
        }
        state
    }
}

/// A change in a room, made by a node's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    UserJoined {
        app_id: u32,
        room_id: String,
        user: User,
    },
    UserLeft {
        app_id: u32,
        room_id: String,
        user_id: String,
    },
    StreamAdded {
        app_id: u32,
        room_id: String,
        stream: StreamInfo,
    },
    StreamExtraInfo {
        app_id: u32,
        room_id: String,
        stream: StreamInfo,
    },
    /// Streams deleted, with one of [`crate::message::stream_delete_reason`].
    StreamsDeleted {
        app_id: u32,
        room_id: String,
        stream_ids: Vec<String>,
        reason: u32,
    },
    RoomExtraInfo {
        app_id: u32,
        room_id: String,
        info: RoomExtraInfo,
    },
    /// A room message (broadcast, custom command) for the members of other nodes: all of them, or only the users
    /// listed.
    Message {
        app_id: u32,
        room_id: String,
        to_user_ids: Option<Vec<String>>,
        message: ServerMessage,
    },
}

impl RoomEvent {
    pub fn room(&self) -> (u32, &str) {
        match self {
            RoomEvent::UserJoined {
                app_id, room_id, ..
            }
            | RoomEvent::UserLeft {
                app_id, room_id, ..
            }
            | RoomEvent::StreamAdded {
                app_id, room_id, ..
            }
            | RoomEvent::StreamExtraInfo {
                app_id, room_id, ..
            }
            | RoomEvent::StreamsDeleted {
                app_id, room_id, ..
            }
            | RoomEvent::RoomExtraInfo {
                app_id, room_id, ..
            }
            | RoomEvent::Message {
                app_id, room_id, ..
            } => (*app_id, room_id),
        }
    }
}

/// The HTTP path on which a node answers another node's pull of a stream it owns: `POST` with the puller's SDP
/// offer (`Content-Type: application/sdp`, `Authorization: Bearer <cluster secret>`) answers `201 Created` with the
/// SDP answer and a `Location` to `DELETE` when the pull ends.
pub fn pull_path(app_id: u32, stream_id: &str) -> String {
    format!("/cluster/pull/{app_id}/{stream_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_keys_read_back_with_colons_in_room_ids() {
        let channel = room_channel(7, "a:b");
        assert_eq!(parse_room_channel(&channel), Some((7, "a:b")));
        assert_eq!(
            parse_room_key(&users_key(7, "a:b")),
            Some((RoomKey::Users, 7, "a:b"))
        );
        assert_eq!(
            parse_room_key(&streams_key(1, "r")),
            Some((RoomKey::Streams, 1, "r"))
        );
        assert_eq!(
            parse_room_key(&extra_key(1, "r")),
            Some((RoomKey::Extra, 1, "r"))
        );
        assert_eq!(parse_room_key("zego:owner:1:s"), None);
        assert_eq!(parse_room_channel("zego:room:x:r"), None);
    }

    #[test]
    fn an_envelope_round_trips_through_json() {
        let envelope = Envelope {
            node: "a".into(),
            event: RoomEvent::UserJoined {
                app_id: 1,
                room_id: "r".into(),
                user: User {
                    user_id: "u".into(),
                    user_name: "U".into(),
                },
            },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        let placed = Placed {
            node: "a".to_owned(),
            item: User {
                user_id: "u".into(),
                user_name: "U".into(),
            },
        };
        let text = serde_json::to_string(&placed).unwrap();
        assert_eq!(text, r#"{"node":"a","user_id":"u","user_name":"U"}"#);
        assert_eq!(serde_json::from_str::<Placed<User>>(&text).unwrap(), placed);
    }
}
