/* A libgupnp-igd-1.0.so.4 without UPnP, for running Debian bookworm's simple-whip-client in tests.
 *
 * That whip-client links libsoup 2.4, while webrtcbin's libnice links libgupnp-igd, which pulls in libsoup 3; the
 * two cannot share a process, so the client aborts as its pipeline starts. libnice only uses UPnP-IGD to open
 * ports on a home router, and copes with no IGD thread (it checks the pointer), so this library answers "none".
 * The tests put it first on LD_LIBRARY_PATH of the whip-client process only. */
#include <stddef.h>

typedef unsigned long GType;
extern GType g_object_get_type(void);

void *gupnp_simple_igd_thread_new(void) { return NULL; }
GType gupnp_simple_igd_get_type(void) { return g_object_get_type(); }
void gupnp_simple_igd_add_port(void *self, const char *protocol, unsigned external_port, const char *local_ip,
                               unsigned local_port, unsigned lease_duration, const char *description) {
    (void)self; (void)protocol; (void)external_port; (void)local_ip; (void)local_port; (void)lease_duration;
    (void)description;
}
void gupnp_simple_igd_remove_port_local(void *self, const char *protocol, const char *local_ip, unsigned local_port) {
    (void)self; (void)protocol; (void)local_ip; (void)local_port;
}
