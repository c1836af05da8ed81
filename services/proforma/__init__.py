"""ProForma (spec 7, 13): what-if modeling sessions, their impact computed by the same engines
as the real book, single-trade what-ifs, hedge search and broker-ready trade lists."""
