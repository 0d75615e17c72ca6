/* SPDX-License-Identifier: MIT */
/* petrelctl dkim: DKIM key generation. */
#ifndef PETREL_CTL_DKIM_H
#define PETREL_CTL_DKIM_H

/*
 * `petrelctl dkim keygen --type rsa|ed25519 [--bits N] --selector S
 * --domain D --out FILE`: @p argv[0] is the verb. Writes the private key
 * (PKCS#8 PEM, mode 0600, never over an existing file) and prints the
 * TXT record to publish. @return an exit code (CTL_EXIT_*).
 */
int ctl_dkim_main(int argc, char **argv);

#endif
