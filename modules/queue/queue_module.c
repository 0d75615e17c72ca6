/* SPDX-License-Identifier: MIT */
/* The queue module: descriptor, lifecycle, the runner helper process. */
#include <string.h>

#include "queue_int.h"

/*
 * Every worker gets the "queue" service (enqueue); the master asks for
 * one helper process, "queue", that runs the scheduler and the delivery
 * engine. The module needs no service at load time: the runner looks up
 * "resolver", "storage" and "auth" when it starts and says in the log
 * what it must do without.
 */

static int
queue_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct queue_conf *conf = ptl_instance_conf(inst);
	struct ptl_pool *pool = ptl_instance_pool(inst);

	conf->qdir = queue_conf_dir(conf, pool);
	if (conf->qdir == NULL)
		return ptl_error_set(err, "out of memory");
	/* Password files are read here, as root; workers inherit them. */
	if (queue_conf_parse_routes(conf, pool, &conf->routes, &conf->nroutes,
	                            err) != PTL_OK)
		return PTL_ERROR;
	return ptl_helper_add(inst, "queue", queue_runner_start, NULL, err);
}

static int
queue_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct queue_conf *conf = ptl_instance_conf(inst);

	return queue_service_start(inst, conf, err);
}

static void
queue_exit_worker(struct ptl_instance *inst)
{
	queue_runner_stop(inst);
	queue_service_stop(inst);
}

static const struct ptl_service_ref queue_provides[] = {
    {PTL_QUEUE_SERVICE, PTL_QUEUE_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "queue",
    .version = "1.0",
    .description = "durable outbound queue, delivery runner, bounces",
    .license = "MIT",
    .provides = queue_provides,
    .conf_keys = queue_conf_keys,
    .conf_size = sizeof(struct queue_conf),
    .check_config = queue_conf_check,
    .init_master = queue_init_master,
    .init_worker = queue_init_worker,
    .exit_worker = queue_exit_worker,
};
