// Package testscripts drives the real paddock binary with testscript
// (.txtar files in testdata/): operators' command lines, against real
// ZooKeeper and the real Docker engine. Custom commands live in
// cmds_*.go files, registered in init() into the commands map.
package testscripts
