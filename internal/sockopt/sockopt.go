// Package sockopt holds the socket options the daemon sets on its
// connections, to the source and to the targets alike.
package sockopt
