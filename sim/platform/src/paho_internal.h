/*
 * paho_internal.h - between the two files of sim_paho: paho.c (clients) and paho_socket.c
 * (the connect(), poll() and usleep() that Paho's sockets and receive thread pass through).
 */
#ifndef SIM_PAHO_INTERNAL_H
#define SIM_PAHO_INTERNAL_H

/* Resolve the next connect(), poll() and usleep() and make the wake eventfd; once, any
   thread. Calling it also links paho_socket.c into every program that uses
   sim_paho_create. */
void sim_paho__sockets_init(void);

#endif
