/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: RFC 7489 aggregate reports from the module's data. */
#ifndef PETREL_CTL_DMARC_H
#define PETREL_CTL_DMARC_H

/*
 * `petrelctl dmarc report [options]`: @p argv[0] is the verb. Reads one
 * day of the dmarc module's report data and writes (--out) or submits
 * (--send) one report message per rua destination. @p config is the -c
 * of petrelctl, or NULL. Blocking (DNS, SMTP). @return an exit code
 * (CTL_EXIT_*).
 */
int ctl_dmarc_main(const char *config, int argc, char **argv);

#endif
