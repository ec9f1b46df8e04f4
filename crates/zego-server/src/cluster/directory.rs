//! The directory in Redis and the room events on its pub/sub: one task per node that connects (and reconnects),
//! writes this node's changes and publishes them, applies the other nodes' events, refreshes this node's leases
//! and notices nodes whose lease expired.
//!
//! After each (re)connection the node subscribes first, then writes its whole state again (Redis may have lost
//! it) and reads the whole directory back, so nothing published in between is missed: events are idempotent.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zego_protocol::cluster::{
    self, Envelope, NodeId, NodeInfo, NodeState, Placed, RoomEvent, RoomKey, LEASE_MS, NODES_KEY,
    REFRESH_MS,
};
use zego_protocol::message::{RoomExtraInfo, StreamInfo, User};
use zego_relay::StreamKey;

use super::Cluster;
use crate::hub::Hub;

/// Waits between connection attempts, growing to the last.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// A Redis command that takes longer than this counts as Redis being away.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets the owner key if it is free or already this node's (then its lease is renewed): 1 if it is this node's.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Deletes the owner key if it is this node's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Deletes a placed entry (user or stream) of a room hash if this node placed it; when the room has no user
/// left (KEYS[2], the users hash), its extra info (KEYS[3]) goes too.
const UNPLACE: &str = r"
local placed = redis.call('HGET', KEYS[1], ARGV[1])
if placed and cjson.decode(placed).node == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
end
return 0";

pub(super) async fn claim(
    conn: &mut MultiplexedConnection,
    node: &str,
    key: &StreamKey,
) -> redis::RedisResult<bool> {
    let granted: i64 = redis::Script::new(CLAIM)
        .key(cluster::owner_key(key.app_id, &key.stream_id))
        .arg(node)
        .arg(LEASE_MS)
        .invoke_async(conn)
        .await?;
    Ok(granted == 1)
}

pub(super) async fn release(
    conn: &mut MultiplexedConnection,
    node: &str,
    key: &StreamKey,
) -> redis::RedisResult<()> {
    redis::Script::new(RELEASE)
        .key(cluster::owner_key(key.app_id, &key.stream_id))
        .arg(node)
        .invoke_async::<i64>(conn)
        .await?;
    Ok(())
}

/// One node's registration, read now (`None`: it has no lease).
pub(super) async fn node_info(
    conn: &mut MultiplexedConnection,
    node: &str,
) -> redis::RedisResult<Option<NodeInfo>> {
    let text: Option<String> = conn.get(cluster::node_key(node)).await?;
    Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
}

/// The directory task of a node, until shutdown.
pub async fn run(
    hub: Arc<Hub>,
    cluster: Arc<Cluster>,
    mut events: mpsc::UnboundedReceiver<RoomEvent>,
    shutdown: CancellationToken,
) {
    let client = match redis::Client::open(cluster.config.redis.as_str()) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("the cluster's Redis URL is unusable: {e}");
            return;
        }
    };
    let mut failures = 0usize;
    loop {
        let session = Session {
            hub: &hub,
            cluster: &cluster,
        };
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => break,
            outcome = session.serve(&client, &mut events) => outcome,
        };
        let was_ready = cluster.ready.swap(false, Ordering::AcqRel);
        *cluster.conn.lock() = None;
        match outcome {
            Ok(()) => break,
            Err(e) if was_ready => {
                failures = 0;
                tracing::warn!("lost the cluster directory: {e}; reconnecting");
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("cannot reach the cluster directory: {e}; retrying");
                }
                failures += 1;
            }
        }
        let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
        // Changes made while Redis is away are written with the whole state on reconnection.
        while events.try_recv().is_ok() {}
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // Leaving: the others hear of it at once instead of when the lease expires.
    if let Some(mut conn) = connect(&client).await.ok().map(|(c, _)| c) {
        let _ = leave(&mut conn, &cluster).await;
    }
}

async fn connect(
    client: &redis::Client,
) -> redis::RedisResult<(MultiplexedConnection, redis::aio::PubSub)> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT);
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let pubsub = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    Ok((conn, pubsub))
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

struct Session<'a> {
    hub: &'a Arc<Hub>,
    cluster: &'a Arc<Cluster>,
}

impl Session<'_> {
    /// One connection's life: set up, then serve until Redis goes away (`Err`).
    async fn serve(
        &self,
        client: &redis::Client,
        events: &mut mpsc::UnboundedReceiver<RoomEvent>,
    ) -> redis::RedisResult<()> {
        let (mut conn, mut pubsub) = connect(client).await?;
        pubsub.psubscribe(cluster::ROOM_CHANNEL_PATTERN).await?;
        pubsub.subscribe(cluster::STATE_CHANNEL).await?;
        let mut messages = pubsub.into_on_message();

        let live = self.refresh(&mut conn).await?;
        // Changes queued before this point are in the state written now.
        while events.try_recv().is_ok() {}
        let state = self.hub.cluster_state();
        for event in &state {
            self.write(&mut conn, event).await?;
        }
        let placed = NodeState::of(&self.cluster.node, &state);
        self.prune(&mut conn, &placed).await?;
        self.publish_state(&mut conn, &placed).await?;
        let owned: Vec<StreamKey> = self.cluster.owned.lock().iter().cloned().collect();
        for key in owned {
            if !claim(&mut conn, &self.cluster.node, &key).await? {
                tracing::error!(stream_id = %key.stream_id, "another node took a stream id published here");
            }
        }
        let directory = read_directory(&mut conn).await?;
        let others = directory
            .into_iter()
            .filter(|(node, _)| {
                node.is_empty() || (live.contains(node) && *node != self.cluster.node)
            })
            .collect();
        self.hub.cluster_resync(others);
        *self.cluster.conn.lock() = Some(conn.clone());
        self.cluster.ready.store(true, Ordering::Release);
        tracing::info!(node = %self.cluster.node, "joined the cluster directory");

        let mut ticker = tokio::time::interval(Duration::from_millis(REFRESH_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    self.write(&mut conn, &event).await?;
                }
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(redis::RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "the room events subscription ended",
                        )));
                    };
                    self.receive(&message);
                }
                _ = ticker.tick() => {
                    self.refresh(&mut conn).await?;
                }
            }
        }
    }

    /// Removes what this node placed in the directory and no longer has (it left while Redis was away), and tells
    /// the others.
    async fn prune(
        &self,
        conn: &mut MultiplexedConnection,
        placed: &NodeState,
    ) -> redis::RedisResult<()> {
        let users: HashSet<&(u32, String, String)> = placed.users.iter().collect();
        let streams: HashSet<&(u32, String)> = placed.streams.iter().collect();
        let node = self.cluster.node.as_str();
        for (key, entries) in room_hashes(conn).await? {
            let Some((kind, app_id, room_id)) = cluster::parse_room_key(&key) else {
                continue;
            };
            for (field, text) in entries {
                if placed_node(&text).as_deref() != Some(node) {
                    continue;
                }
                let event = match kind {
                    RoomKey::Users
                        if !users.contains(&(app_id, room_id.to_owned(), field.clone())) =>
                    {
                        RoomEvent::UserLeft {
                            app_id,
                            room_id: room_id.to_owned(),
                            user_id: field,
                        }
                    }
                    RoomKey::Streams if !streams.contains(&(app_id, field.clone())) => {
                        RoomEvent::StreamsDeleted {
                            app_id,
                            room_id: room_id.to_owned(),
                            stream_ids: vec![field],
                            reason: zego_protocol::message::stream_delete_reason::STOPPED,
                        }
                    }
                    _ => continue,
                };
                self.write(conn, &event).await?;
            }
        }
        Ok(())
    }

    /// Tells the others all this node has placed.
    async fn publish_state(
        &self,
        conn: &mut MultiplexedConnection,
        placed: &NodeState,
    ) -> redis::RedisResult<()> {
        let text = serde_json::to_string(placed).expect("node state serializes");
        conn.publish::<_, _, ()>(cluster::STATE_CHANNEL, text).await
    }

    /// An event of another node, from a room channel (or its whole state, from the state channel).
    fn receive(&self, message: &redis::Msg) {
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        if message.get_channel_name() == cluster::STATE_CHANNEL {
            match serde_json::from_str::<NodeState>(&payload) {
                Ok(state) if state.node == self.cluster.node => {}
                Ok(state) => self.hub.node_state(&state),
                Err(e) => tracing::warn!("unreadable node state: {e}"),
            }
            return;
        }
        match serde_json::from_str::<Envelope>(&payload) {
            Ok(envelope) if envelope.node == self.cluster.node => {}
            Ok(envelope) => self.hub.cluster_event(&envelope.node, envelope.event),
            Err(e) => tracing::warn!(
                channel = message.get_channel_name(),
                "unreadable room event: {e}"
            ),
        }
    }

    /// Writes one change of this node to the directory and publishes it on its room's channel, atomically.
    async fn write(
        &self,
        conn: &mut MultiplexedConnection,
        event: &RoomEvent,
    ) -> redis::RedisResult<()> {
        let node = &self.cluster.node;
        let (app_id, room_id) = event.room();
        let users = cluster::users_key(app_id, room_id);
        let extra = cluster::extra_key(app_id, room_id);
        let streams = cluster::streams_key(app_id, room_id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        match event {
            RoomEvent::UserJoined { user, .. } => {
                let placed = placed(node, user.clone());
                pipe.hset(&users, &user.user_id, placed).ignore();
            }
            RoomEvent::UserLeft { user_id, .. } => {
                unplace(&mut pipe, &users, &users, &extra, user_id, node);
            }
            RoomEvent::StreamAdded { stream, .. } | RoomEvent::StreamExtraInfo { stream, .. } => {
                let placed = placed(node, stream.clone());
                pipe.hset(&streams, &stream.stream_id, placed).ignore();
            }
            RoomEvent::StreamsDeleted { stream_ids, .. } => {
                for stream_id in stream_ids {
                    unplace(&mut pipe, &streams, &users, &extra, stream_id, node);
                }
            }
            RoomEvent::RoomExtraInfo { info, .. } => {
                let text = serde_json::to_string(info).expect("extra info serializes");
                pipe.hset(&extra, &info.key, text).ignore();
            }
            RoomEvent::Message { .. } => {}
        }
        let envelope = Envelope {
            node: node.clone(),
            event: event.clone(),
        };
        let text = serde_json::to_string(&envelope).expect("room events serialize");
        pipe.publish(cluster::room_channel(app_id, room_id), text)
            .ignore();
        pipe.query_async::<()>(conn).await?;
        if let RoomEvent::StreamsDeleted { stream_ids, .. } = event {
            for stream_id in stream_ids {
                let key = StreamKey {
                    app_id,
                    stream_id: stream_id.clone(),
                };
                if self.cluster.owned.lock().remove(&key) {
                    release(conn, node, &key).await?;
                }
            }
        }
        Ok(())
    }

    /// Renews this node's registration (with its load) and its stream ids, reads the other nodes, and cleans up
    /// after those whose lease expired. Returns the live nodes.
    async fn refresh(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<HashSet<NodeId>> {
        let node = &self.cluster.node;
        let mut info = self.cluster.info.clone();
        info.load = self.hub.load();
        let text = serde_json::to_string(&info).expect("node info serializes");
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(cluster::node_key(node))
            .arg(text)
            .arg("PX")
            .arg(LEASE_MS)
            .ignore()
            .sadd(NODES_KEY, node)
            .ignore()
            .query_async::<()>(conn)
            .await?;
        let owned: Vec<StreamKey> = self.cluster.owned.lock().iter().cloned().collect();
        for key in owned {
            if !claim(conn, node, &key).await? {
                tracing::error!(stream_id = %key.stream_id, "another node took a stream id published here");
            }
        }

        let members: Vec<String> = conn.smembers(NODES_KEY).await?;
        let keys: Vec<String> = members.iter().map(|n| cluster::node_key(n)).collect();
        let infos: Vec<Option<String>> = if keys.is_empty() {
            Vec::new()
        } else {
            redis::cmd("MGET").arg(&keys).query_async(conn).await?
        };
        let mut live = HashSet::new();
        let mut nodes = HashMap::new();
        let mut gone = Vec::new();
        let listed: HashSet<String> = members.iter().cloned().collect();
        for (member, info) in members.into_iter().zip(infos) {
            match info.and_then(|text| serde_json::from_str::<NodeInfo>(&text).ok()) {
                Some(info) => {
                    live.insert(member.clone());
                    if member != *node {
                        nodes.insert(member, info);
                    }
                }
                None => gone.push(member),
            }
        }
        self.cluster.update_nodes(&listed, nodes, &mut gone);
        for dead in gone {
            tracing::warn!(node = %dead, "a node left the cluster (its lease expired)");
            self.hub.node_gone(&dead);
            clean_up_after(conn, &dead).await?;
        }
        Ok(live)
    }
}

/// Leaving the cluster on shutdown: this node's entries, stream ids and registration are removed.
async fn leave(conn: &mut MultiplexedConnection, cluster: &Arc<Cluster>) -> redis::RedisResult<()> {
    let owned: Vec<StreamKey> = cluster.owned.lock().drain().collect();
    for key in owned {
        release(conn, &cluster.node, &key).await?;
    }
    redis::pipe()
        .del(cluster::node_key(&cluster.node))
        .ignore()
        .query_async::<()>(conn)
        .await?;
    clean_up_after(conn, &cluster.node).await
}

/// Removes a node's entries from every room hash and the node from the set (idempotent: every node that notices
/// may do it).
async fn clean_up_after(conn: &mut MultiplexedConnection, node: &str) -> redis::RedisResult<()> {
    for (key, entries) in room_hashes(conn).await? {
        let Some((kind, app_id, room_id)) = cluster::parse_room_key(&key) else {
            continue;
        };
        if kind == RoomKey::Extra {
            continue;
        }
        let users = cluster::users_key(app_id, room_id);
        let extra = cluster::extra_key(app_id, room_id);
        let mut pipe = redis::pipe();
        let mut any = false;
        for (field, text) in entries {
            if placed_node(&text).as_deref() == Some(node) {
                unplace(&mut pipe, &key, &users, &extra, &field, node);
                any = true;
            }
        }
        if any {
            pipe.query_async::<()>(conn).await?;
        }
    }
    conn.srem::<_, _, ()>(NODES_KEY, node).await
}

/// Every room hash and its entries.
async fn room_hashes(
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<(String, Vec<(String, String)>)>> {
    let mut keys = Vec::new();
    for pattern in ["zego:users:*", "zego:streams:*", "zego:extra:*"] {
        let mut iter: redis::AsyncIter<String> = conn.scan_match(pattern).await?;
        while let Some(key) = iter.next_item().await {
            keys.push(key?);
        }
    }
    let mut hashes = Vec::with_capacity(keys.len());
    for key in keys {
        let entries: Vec<(String, String)> = conn.hgetall(&key).await?;
        hashes.push((key, entries));
    }
    Ok(hashes)
}

/// The whole directory as the events that place what it holds, each with the node that placed it (an empty node
/// for room extra info, which belongs to the room).
async fn read_directory(
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<(NodeId, RoomEvent)>> {
    let mut placed = Vec::new();
    for (key, entries) in room_hashes(conn).await? {
        let Some((kind, app_id, room_id)) = cluster::parse_room_key(&key) else {
            continue;
        };
        let room_id = room_id.to_owned();
        for (_, text) in entries {
            let entry = match kind {
                RoomKey::Users => serde_json::from_str::<Placed<User>>(&text).ok().map(|p| {
                    let event = RoomEvent::UserJoined {
                        app_id,
                        room_id: room_id.clone(),
                        user: p.item,
                    };
                    (p.node, event)
                }),
                RoomKey::Streams => {
                    serde_json::from_str::<Placed<StreamInfo>>(&text)
                        .ok()
                        .map(|p| {
                            let event = RoomEvent::StreamAdded {
                                app_id,
                                room_id: room_id.clone(),
                                stream: p.item,
                            };
                            (p.node, event)
                        })
                }
                RoomKey::Extra => serde_json::from_str::<RoomExtraInfo>(&text)
                    .ok()
                    .map(|info| {
                        let event = RoomEvent::RoomExtraInfo {
                            app_id,
                            room_id: room_id.clone(),
                            info,
                        };
                        (NodeId::new(), event)
                    }),
            };
            match entry {
                Some(entry) => placed.push(entry),
                None => tracing::warn!(key, "unreadable directory entry"),
            }
        }
    }
    // Users before streams before extra info: a stream's publisher is known when its stream is.
    placed.sort_by_key(|(_, event)| match event {
        RoomEvent::UserJoined { .. } => 0,
        RoomEvent::StreamAdded { .. } => 1,
        _ => 2,
    });
    Ok(placed)
}

fn placed<T: serde::Serialize>(node: &str, item: T) -> String {
    serde_json::to_string(&Placed {
        node: node.to_owned(),
        item,
    })
    .expect("directory entries serialize")
}

fn placed_node(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Node {
        node: String,
    }
    serde_json::from_str::<Node>(text).ok().map(|n| n.node)
}

fn unplace(
    pipe: &mut redis::Pipeline,
    hash: &str,
    users: &str,
    extra: &str,
    field: &str,
    node: &str,
) {
    pipe.cmd("EVAL")
        .arg(UNPLACE)
        .arg(3)
        .arg(hash)
        .arg(users)
        .arg(extra)
        .arg(field)
        .arg(node)
        .ignore();
}
