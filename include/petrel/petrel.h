/* SPDX-License-Identifier: MIT */
/* Umbrella header: everything a Petrel module may use. */
#ifndef PETREL_PETREL_H
#define PETREL_PETREL_H

#include <petrel/core.h>
#include <petrel/pool.h>
#include <petrel/buf.h>
#include <petrel/log.h>
#include <petrel/config.h>
#include <petrel/module.h>
#include <petrel/service.h>
#include <petrel/event.h>
#include <petrel/conn.h>
#include <petrel/auth.h>
#include <petrel/sasl.h>
#include <petrel/storage.h>

#endif
