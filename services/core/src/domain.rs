//! Domain types of the charging network, parsed at the edges and trusted inside.
