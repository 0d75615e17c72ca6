/* SPDX-License-Identifier: MIT */
/* Reading a password: the terminal without echo, or one line of stdin. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "passwd.h"
#include "ctl.h"

/* The terminal as it was, restored even when a signal ends us. */
static struct termios ctl_saved_tty;
static volatile sig_atomic_t ctl_tty_changed;

static void
ctl_restore_tty(void)
{
	if (ctl_tty_changed) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_saved_tty);
		ctl_tty_changed = 0;
	}
}

static void
ctl_on_signal(int signo)
{
	ctl_restore_tty();
	(void)signal(signo, SIG_DFL);
	(void)raise(signo);
}

/*
 * One line from fd 0, byte by byte so that nothing after it is taken.
 * @return its length without the LF (and a CR before it), or -1 (too
 * long, read error, NUL byte); -2 at EOF before any byte.
 */
static int
ctl_read_line(char *out, size_t out_size)
{
	size_t len = 0;
	bool any = false, too_long = false;
	char c;

	for (;;) {
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_error("cannot read the password: %s",
			          strerror(errno));
			return -1;
		}
		if (n == 0 && !any)
			return -2;
		if (n == 0 || c == '\n')
			break;
		any = true;
		if (c == '\0') {
			explicit_bzero(out, out_size);
			ctl_error("the password contains a NUL byte");
			return -1;
		}
		if (len + 1 >= out_size)
			too_long = true;
		else
			out[len++] = c;
	}
	if (too_long) {
		explicit_bzero(out, out_size);
		ctl_error("password longer than %zu bytes", out_size - 1);
		return -1;
	}
	if (len > 0 && out[len - 1] == '\r')
		len--;
	out[len] = '\0';
	return (int)len;
}

static int
ctl_prompt(const char *prompt, char *out, size_t out_size)
{
	struct sigaction sa, old_int, old_term, old_hup, old_quit;
	struct termios quiet;
	int len;

	if (tcgetattr(STDIN_FILENO, &ctl_saved_tty) != 0) {
		ctl_error("cannot read the terminal settings: %s",
		          strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, &old_int);
	(void)sigaction(SIGTERM, &sa, &old_term);
	(void)sigaction(SIGHUP, &sa, &old_hup);
	(void)sigaction(SIGQUIT, &sa, &old_quit);

	quiet = ctl_saved_tty;
	quiet.c_lflag &= (tcflag_t)~ECHO;
	quiet.c_lflag |= ECHONL;
	/* Echo off before the prompt: typing after it never shows. */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
		ctl_error("cannot turn off the echo: %s", strerror(errno));
		len = -1;
	} else {
		ctl_tty_changed = 1;
		fputs(prompt, stderr);
		fflush(stderr);
		len = ctl_read_line(out, out_size);
		ctl_restore_tty();
	}
	(void)sigaction(SIGINT, &old_int, NULL);
	(void)sigaction(SIGTERM, &old_term, NULL);
	(void)sigaction(SIGHUP, &old_hup, NULL);
	(void)sigaction(SIGQUIT, &old_quit, NULL);
	if (len == -2) {
		fputc('\n', stderr);
		ctl_error("no password given");
		return -1;
	}
	return len;
}

int
ctl_password_read(bool confirm, char *out, size_t out_size)
{
	char again[PASSWD_PASSWORD_MAX + 1];
	int len, len2;

	if (!isatty(STDIN_FILENO)) {
		len = ctl_read_line(out, out_size);
		if (len == -2) {
			ctl_error("no password on stdin");
			return -1;
		}
	} else {
		len = ctl_prompt("Password: ", out, out_size);
		if (len > 0 && confirm) {
			len2 = ctl_prompt("Retype password: ", again,
			                  sizeof(again));
			if (len2 < 0) {
				explicit_bzero(out, out_size);
				return -1;
			}
			if (len2 != len || memcmp(out, again, (size_t)len)) {
				explicit_bzero(out, out_size);
				explicit_bzero(again, sizeof(again));
				ctl_error("the passwords do not match");
				return -1;
			}
			explicit_bzero(again, sizeof(again));
		}
	}
	if (len == 0) {
		ctl_error("empty password");
		return -1;
	}
	return len;
}
