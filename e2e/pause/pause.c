/*
 * Minimal pod sandbox ("pause") process for the local e2e cluster.
 *
 * It holds the pod's namespaces open and does nothing else: it sleeps in
 * pause(), reaps children that get re-parented to it (it is PID 1 when the pod
 * shares its PID namespace) and exits cleanly on SIGINT/SIGTERM.
 * Built with `gcc -static -O2`; no libc features beyond signals are used.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("kubedag-pause 1");
    return 0;
  }
  struct sigaction stop = {0}, child = {0};
  stop.sa_handler = on_stop;
  sigemptyset(&stop.sa_mask);
  child.sa_handler = on_child;
  sigemptyset(&child.sa_mask);
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
  return 0; /* not reached */
}
