// Package common holds what every console screen shares: the Common
// context (size, theme, keys, clock), the Screen contract, and the
// table, bar and text helpers that keep every line inside the terminal
// width.
//
// It must not import screens or talk to ZooKeeper.
package common
