/* SPDX-License-Identifier: MIT */
/* POP3 module descriptor and lifecycle: listeners, services, per-worker state.
 */
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

/*
 * Master, as root, once per generation: declare the listeners. The
 * listener records live in the instance pool, which the workers inherit.
 */
static int
pop3_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct pop3_conf *conf = ptl_instance_conf(inst);
	const struct pop3_listen_conf *items = conf->listen.items;
	struct ptl_listen_spec spec;
	struct pop3_listener *l;
	size_t i;

	for (i = 0; i < conf->listen.count; i++) {
		l = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*l));
		if (l == NULL)
			return ptl_error_set(err, "out of memory");
		l->inst = inst;
		l->conf = conf;
		l->implicit_tls = items[i].tls == POP3_TLS_IMPLICIT;

		memset(&spec, 0, sizeof(spec));
		spec.address = items[i].address;
		spec.tls = l->implicit_tls ? PTL_TLS_IMPLICIT : PTL_TLS_NONE;
		spec.limits.idle_timeout_ms = conf->idle_timeout_ms;
		spec.limits.total_timeout_ms = conf->session_timeout_ms;
		/* Commands are parsed from peek(); read_line is unused. */
		spec.limits.max_line = (size_t)conf->max_line;
		spec.limits.write_high_water = (size_t)conf->write_buffer;
		spec.max_connections = (unsigned)conf->max_connections;
		spec.max_per_ip = (unsigned)conf->max_per_ip;
		if (ptl_listener_add(inst, &spec, pop3_session_accept, l,
		                     err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

static void
pop3_worker_free(struct pop3_worker *w)
{
	if (w == NULL)
		return;
	pop3_throttle_free(w->throttle);
	free(w->networks);
	free(w);
}

/* Each worker: find the services, parse the trusted networks. */
static int
pop3_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct pop3_conf *conf = ptl_instance_conf(inst);
	const char *const *nets = conf->plaintext_auth_networks.items;
	const struct ptl_service *auth, *storage;
	struct pop3_worker *w;
	size_t i;

	auth = ptl_service_find(PTL_AUTH_SERVICE, PTL_AUTH_VERSION);
	storage = ptl_service_find(PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION);
	if (auth == NULL || storage == NULL)
		return ptl_error_set(err, "pop3 needs the \"auth\" and "
		                          "\"storage\" services");
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return ptl_error_set(err, "out of memory");
	w->conf = conf;
	w->auth = auth->methods;
	w->auth_instance = auth->instance;
	w->storage = storage->methods;
	w->storage_instance = storage->instance;
	w->throttle = pop3_throttle_new(conf->auth_failure_window_ms);
	if (conf->plaintext_auth_networks.count > 0)
		w->networks = calloc(conf->plaintext_auth_networks.count,
		                     sizeof(*w->networks));
	if (w->throttle == NULL ||
	    (conf->plaintext_auth_networks.count > 0 && w->networks == NULL)) {
		pop3_worker_free(w);
		return ptl_error_set(err, "out of memory");
	}
	for (i = 0; i < conf->plaintext_auth_networks.count; i++) {
		if (pop3_cidr_parse(nets[i], &w->networks[i], err) != PTL_OK) {
			pop3_worker_free(w);
			return PTL_ERROR;
		}
	}
	w->nnetworks = conf->plaintext_auth_networks.count;
	ptl_instance_set_data(inst, w);
	return PTL_OK;
}

static void
pop3_exit_worker(struct ptl_instance *inst)
{
	pop3_worker_free(ptl_instance_data(inst));
	ptl_instance_set_data(inst, NULL);
}

static const struct ptl_service_ref pop3_needs[] = {
    {PTL_AUTH_SERVICE, PTL_AUTH_VERSION},
    {PTL_STORAGE_SERVICE, PTL_STORAGE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "pop3",
    .version = "1.0",
    .description = "POP3 server (RFC 1939) with CAPA, UIDL, TOP, STLS, "
                   "SASL PLAIN and implicit TLS",
    .license = "MIT",
    .needs = pop3_needs,
    .conf_keys = pop3_conf_keys,
    .conf_size = sizeof(struct pop3_conf),
    .check_config = pop3_check_config,
    .init_master = pop3_init_master,
    .init_worker = pop3_init_worker,
    .exit_worker = pop3_exit_worker,
};
