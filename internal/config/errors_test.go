package config

import "testing"

// TestValidationErrors has one case per validation rule, with the exact
// message, file name and line.
func TestValidationErrors(t *testing.T) {
	const (
		wantSize   = `want a size like "50MB" or a number of octets`
		wantDur    = `want a positive duration like "5m", "1h30m" or "5d"`
		wantNH     = `want a next hop like "host", "host:port", "[host]:port" (no MX lookup) or a comma-separated list of them`
		wantDom    = `want a domain like "example.com", ".example.com" (its subdomains) or "*" (every domain)`
		wantNets   = `want a list of networks like "192.0.2.0/24", "2001:db8::/32" or "192.0.2.7"`
		wantDoms   = `want a list of domains like "example.com" or ".example.com" (its subdomains)`
		wantRate   = `want a rate like "100/1m" (messages per duration) or "" (no limit)`
		wantKW     = `want a list of EHLO keywords from 8BITMIME, PIPELINING, SIZE, DSN, ENHANCEDSTATUSCODES, SMTPUTF8, CHUNKING, BINARYMIME, STARTTLS, AUTH, REQUIRETLS`
		listenerKW = "address, allow_insecure_auth, auth_users_file, bare_newline, implicit_tls, keywords, max_message_size, max_recipients, require_tls, tls_cert, tls_key, transcript_dir"
	)
	cases := []struct {
		name, doc, want string
	}{
		{"syntax", "hostname = \"x\"\n[limits\n", `ferry.toml:2: TOML syntax: expected '.' or ']' to end table name, but got '\n' instead`},
		{"syntax duplicate key", "[limits]\nmax_errors = 1\nmax_errors = 2\n", `ferry.toml:3: TOML syntax: Key 'limits.max_errors' has already been defined.`},
		{"syntax string", "\nhostname = \"relay\n", `ferry.toml:2: TOML syntax: strings cannot contain newlines`},
		{"unknown top-level key", "\n\nhostnme = \"x\"\n", `ferry.toml:3: hostnme: unknown key (did you mean "hostname"?); want one of: admin, delivery, dkim, dsn, hostname, limits, listener, log, queue, relay, route, timeouts, transcripts`},
		{"unknown table", "[listner]\naddress = \"x\"\n", `ferry.toml:1: listner: unknown key (did you mean "listener"?); want one of: admin, delivery, dkim, dsn, hostname, limits, listener, log, queue, relay, route, timeouts, transcripts`},
		{"unknown listener key", "[[listener]]\naddress = \"127.0.0.1:25\"\nadress = \"x\"\n", `ferry.toml:3: listener.adress: unknown key (did you mean "address"?); want one of: ` + listenerKW},
		{"unknown key in second listener", "[[listener]]\naddress = \"127.0.0.1:25\"\n\n[[listener]]\naddress = \"127.0.0.1:26\"\nsize = 1\n", `ferry.toml:6: listener.size: unknown key; want one of: ` + listenerKW},
		{"unknown delivery timeout", "[delivery.timeouts]\nquit = \"1m\"\n", `ferry.toml:2: delivery.timeouts.quit: unknown key; want one of: connect, data_block, data_done, data_init, greeting, mail, rcpt`},
		{"unknown dotted key", "queue.spool_dir = \"/x\"\n", `ferry.toml:1: queue.spool_dir: unknown key (did you mean "spool"?); want one of: backend, bounce_lifetime, delay_warning, hop_concurrency, lease_timeout, lifetime, node, reserve, retry_initial, retry_max, segment_size, spool, url`},
		{"hostname type", "hostname = 42\n", `ferry.toml:1: hostname: want a host name like "relay.example.com", got 42`},
		{"hostname syntax", "hostname = \"relay_1.example\"\n", `ferry.toml:1: hostname: want a host name like "relay.example.com", got "relay_1.example" ("_" is not allowed; use letters, digits, '-' and A-labels (xn--…))`},
		{"listener not array", "listener = \"x\"\n", `ferry.toml:1: listener: want an array of tables ([[listener]]), got "x"`},
		{"listener empty", "listener = []\n", `ferry.toml:1: listener: want at least one [[listener]], got none`},
		{"listener address", "[[listener]]\naddress = \"localhost\"\n", `ferry.toml:2: listener.address: want an address like "127.0.0.1:2525" or "[::1]:2525", got "localhost" (no port)`},
		{"listener address host", "[[listener]]\naddress = \"mail.example:25\"\n", `ferry.toml:2: listener.address: want an address like "127.0.0.1:2525" or "[::1]:2525", got "mail.example:25" ("mail.example" is not an IP address)`},
		{"listener port", "[[listener]]\naddress = \"127.0.0.1:99999\"\n", `ferry.toml:2: listener.address: want an address like "127.0.0.1:2525" or "[::1]:2525", got "127.0.0.1:99999" (port "99999" is not a number from 0 to 65535)`},
		{"listener duplicate address", "[[listener]]\naddress = \"127.0.0.1:25\"\n[[listener]]\naddress = \"127.0.0.1:25\"\n", `ferry.toml:4: listener.address: want each listener on its own address, got "127.0.0.1:25" again (first on line 2)`},
		{"keywords unknown", "[[listener]]\nkeywords = [\"8BITMIME\", \"XCLIENT\"]\n", `ferry.toml:2: listener.keywords: ` + wantKW + `, got "XCLIENT"`},
		{"keywords type", "[[listener]]\nkeywords = \"8BITMIME\"\n", `ferry.toml:2: listener.keywords: ` + wantKW + `, got "8BITMIME"`},
		{"keywords element type", "[[listener]]\nkeywords = [8]\n", `ferry.toml:2: listener.keywords: ` + wantKW + `, got 8`},
		{"keywords duplicate", "[[listener]]\nkeywords = [\"SIZE\", \"size\"]\n", `ferry.toml:2: listener.keywords: want each keyword once, got "SIZE" twice`},
		{"binarymime without chunking", "[[listener]]\nkeywords = [\n  \"8BITMIME\",\n  \"BINARYMIME\",\n]\n", `ferry.toml:2: listener.keywords: want CHUNKING with BINARYMIME (RFC 3030 §3), got BINARYMIME alone`},
		{"size word", "\n\n\n\n\n\n\n\n\n\n[[listener]]\nmax_message_size = \"fifty\"\n", `ferry.toml:12: listener.max_message_size: ` + wantSize + `, got "fifty"`},
		{"size unit", "[[listener]]\nmax_message_size = \"50 TB\"\n", `ferry.toml:2: listener.max_message_size: ` + wantSize + `, got "50 TB"`},
		{"size negative", "[[listener]]\nmax_message_size = -1\n", `ferry.toml:2: listener.max_message_size: ` + wantSize + `, got -1`},
		{"size float", "[[listener]]\nmax_message_size = 1.5\n", `ferry.toml:2: listener.max_message_size: ` + wantSize + `, got 1.5`},
		{"size overflow", "[[listener]]\nmax_message_size = \"99999999999GiB\"\n", `ferry.toml:2: listener.max_message_size: ` + wantSize + `, got "99999999999GiB"`},
		{"max recipients", "[[listener]]\nmax_recipients = 99\n", `ferry.toml:2: listener.max_recipients: want a whole number of at least 100 (RFC 5321 §4.5.3.1.8), got 99`},
		{"bare newline", "[[listener]]\nbare_newline = \"strip\"\n", `ferry.toml:2: listener.bare_newline: want "normalize" or "reject", got "strip"`},
		{"tls cert without key", "[[listener]]\ntls_cert = \"/c.pem\"\n", `ferry.toml:2: listener.tls_cert: want tls_cert and tls_key together, got no tls_key`},
		{"tls key without cert", "[[listener]]\naddress = \"127.0.0.1:25\"\ntls_key = \"/k.pem\"\n", `ferry.toml:3: listener.tls_key: want tls_cert and tls_key together, got no tls_cert`},
		{"tls cert type", "[[listener]]\ntls_cert = 1\ntls_key = \"/k.pem\"\n", `ferry.toml:2: listener.tls_cert: want a file or directory path, got 1`},
		{"require tls without cert", "[[listener]]\nrequire_tls = true\n", `ferry.toml:2: listener.require_tls: want tls_cert and tls_key with require_tls, got no certificate`},
		{"require tls type", "[[listener]]\nrequire_tls = \"yes\"\n", `ferry.toml:2: listener.require_tls: want true or false, got "yes"`},
		{"implicit tls without cert", "[[listener]]\naddress = \"127.0.0.1:465\"\nimplicit_tls = true\n", `ferry.toml:3: listener.implicit_tls: want tls_cert and tls_key with implicit_tls, got no certificate`},
		{"auth without tls", "[[listener]]\nauth_users_file = \"/u.txt\"\nallow_insecure_auth = false\n", `ferry.toml:2: listener.auth_users_file: want tls_cert (AUTH is offered only over TLS) or allow_insecure_auth = true with auth_users_file, got neither`},
		{"allow insecure auth type", "[[listener]]\nallow_insecure_auth = 1\n", `ferry.toml:2: listener.allow_insecure_auth: want true or false, got 1`},
		{"transcript dir type", "[[listener]]\ntranscript_dir = false\n", `ferry.toml:2: listener.transcript_dir: want a file or directory path, got false`},
		{"limits type", "[limits]\nmax_connections = \"1000\"\n", `ferry.toml:2: limits.max_connections: want a whole number of at least 1, got "1000"`},
		{"limits zero", "[limits]\nmax_received = 0\n", `ferry.toml:2: limits.max_received: want a whole number of at least 1, got 0`},
		{"per ip over total", "[limits]\nmax_connections = 10\nmax_connections_per_ip = 20\n", `ferry.toml:3: limits.max_connections_per_ip: want at most limits.max_connections (10), got 20`},
		{"limits not table", "limits = 5\n", `ferry.toml:1: limits: want a table, got 5`},
		{"relay unknown key", "[relay]\nnetwork = [\"10.0.0.0/8\"]\n", `ferry.toml:2: relay.network: unknown key (did you mean "networks"?); want one of: accept_domains, networks, rate, sender_rule`},
		{"relay not table", "relay = true\n", `ferry.toml:1: relay: want a table, got true`},
		{"relay networks type", "[relay]\nnetworks = \"10.0.0.0/8\"\n", `ferry.toml:2: relay.networks: ` + wantNets + `, got "10.0.0.0/8"`},
		{"relay network element type", "[relay]\nnetworks = [10]\n", `ferry.toml:2: relay.networks: ` + wantNets + `, got 10`},
		{"relay network host bits", "[relay]\n\nnetworks = [\n  \"127.0.0.0/8\",\n  \"10.1.2.3/8\",\n]\n", `ferry.toml:3: relay.networks: ` + wantNets + `, got "10.1.2.3/8" (host bits set; did you mean 10.0.0.0/8?)`},
		{"relay network zone", "[relay]\nnetworks = [\"fe80::1%eth0\"]\n", `ferry.toml:2: relay.networks: ` + wantNets + `, got "fe80::1%eth0" (zones are not allowed)`},
		{"relay network word", "[relay]\nnetworks = [\"localhost\"]\n", `ferry.toml:2: relay.networks: ` + wantNets + `, got "localhost" (want an address or CIDR prefix: ParseAddr("localhost"): unable to parse IP)`},
		{"accept domain underscore", "[relay]\naccept_domains = [\"ok.example\", \"bad_name.example\"]\n", `ferry.toml:2: relay.accept_domains: ` + wantDoms + `, got "bad_name.example" (idna: disallowed rune U+005F)`},
		{"accept domain wildcard", "[relay]\naccept_domains = [\"*.example.com\"]\n", `ferry.toml:2: relay.accept_domains: ` + wantDoms + `, got "*.example.com" (write ".example.com" to match subdomains)`},
		{"accept domain literal", "[relay]\naccept_domains = [\"[192.0.2.1]\"]\n", `ferry.toml:2: relay.accept_domains: ` + wantDoms + `, got "[192.0.2.1]" (address literal, not a domain name)`},
		{"accept domain numeric", "[relay]\naccept_domains = [\"1.2.3.4\"]\n", `ferry.toml:2: relay.accept_domains: ` + wantDoms + `, got "1.2.3.4" (numeric top-level label)`},
		{"sender rule nobody", "[relay]\n[[relay.sender_rule]]\ndomains = [\"example.com\"]\n", `ferry.toml:2: relay.sender_rule: want networks or users to say whom the rule applies to, got neither`},
		{"sender rule no domains", "[[relay.sender_rule]]\nusers = [\"alice\"]\ndomains = []\n", `ferry.toml:3: relay.sender_rule.domains: want at least one sender domain, got none`},
		{"sender rule unknown key", "[[relay.sender_rule]]\nusers = [\"alice\"]\ndomain = [\"x.example\"]\n", `ferry.toml:3: relay.sender_rule.domain: unknown key (did you mean "domains"?); want one of: domains, networks, users`},
		{"sender rule user", "[[relay.sender_rule]]\nusers = [\"alice smith\"]\ndomains = [\"x.example\"]\n", `ferry.toml:2: relay.sender_rule.users: want a list of user names (as in the auth_users_file), got "alice smith" (user name "alice smith": no spaces, colons or control characters)`},
		{"sender rule network", "[[relay.sender_rule]]\nnetworks = [\"10.0.0.0/33\"]\ndomains = [\"x.example\"]\n", `ferry.toml:2: relay.sender_rule.networks: ` + wantNets + `, got "10.0.0.0/33" (want an address or CIDR prefix: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range)`},
		{"second sender rule", "[[relay.sender_rule]]\nusers = [\"a\"]\ndomains = [\"x.example\"]\n\n[[relay.sender_rule]]\nusers = [\"b\"]\ndomains = [\"x..example\"]\n", `ferry.toml:7: relay.sender_rule.domains: ` + wantDoms + `, got "x..example" (label "": empty label)`},
		{"rate no slash", "[relay.rate]\nper_ip = \"100\"\n", `ferry.toml:2: relay.rate.per_ip: ` + wantRate + `, got "100" (no '/' between messages and duration)`},
		{"rate zero", "[relay.rate]\nper_user = \"0/1m\"\n", `ferry.toml:2: relay.rate.per_user: ` + wantRate + `, got "0/1m" ("0" is not a whole number of messages of at least 1)`},
		{"rate duration", "[relay.rate]\nper_ip = \"100/minute\"\n", `ferry.toml:2: relay.rate.per_ip: ` + wantRate + `, got "100/minute" ("minute" is not a positive duration)`},
		{"rate zero duration", "[relay.rate]\nper_ip = \"100/0s\"\n", `ferry.toml:2: relay.rate.per_ip: ` + wantRate + `, got "100/0s" ("0s" is not a positive duration)`},
		{"rate type", "[relay.rate]\nper_ip = 100\n", `ferry.toml:2: relay.rate.per_ip: ` + wantRate + `, got 100`},
		{"timeout word", "[timeouts]\ncommand = \"five minutes\"\n", `ferry.toml:2: timeouts.command: ` + wantDur + `, got "five minutes"`},
		{"timeout number", "[timeouts]\ngreeting = 300\n", `ferry.toml:2: timeouts.greeting: ` + wantDur + `, got 300`},
		{"timeout zero", "[timeouts]\ndata_total = \"0s\"\n", `ferry.toml:2: timeouts.data_total: ` + wantDur + `, got "0s"`},
		{"timeout negative", "[timeouts]\ndata_block = \"-1m\"\n", `ferry.toml:2: timeouts.data_block: ` + wantDur + `, got "-1m"`},
		{"days bad", "[queue]\nlifetime = \"xd\"\n", `ferry.toml:2: queue.lifetime: ` + wantDur + `, got "xd"`},
		{"delay warning", "[queue]\ndelay_warning = \"soon\"\n", `ferry.toml:2: queue.delay_warning: want a duration like "5m", "1h30m" or "5d", got "soon"`},
		{"spool empty", "[queue]\nspool = \"\"\n", `ferry.toml:2: queue.spool: want a directory path, got ""`},
		{"retry max below initial", "[queue]\nretry_initial = \"10m\"\nretry_max = \"5m\"\n", `ferry.toml:3: queue.retry_max: want at least queue.retry_initial (10m), got "5m"`},
		{"segment size", "[queue]\nsegment_size = \"1KB\"\n", `ferry.toml:2: queue.segment_size: want a size of at least 1MiB like "64MiB" or a number of octets, got "1KB"`},
		{"reserve too large", "[queue]\nsegment_size = \"1MiB\"\nreserve = \"512KiB\"\n", `ferry.toml:3: queue.reserve: want less than half of queue.segment_size (1MiB), got "512KiB"`},
		{"hop concurrency", "[queue]\nhop_concurrency = 0\n", `ferry.toml:2: queue.hop_concurrency: want a whole number of at least 1, got 0`},
		{"workers", "[delivery]\nworkers = 0\n", `ferry.toml:2: delivery.workers: want a whole number of at least 1, got 0`},
		{"ehlo name", "[delivery]\nehlo_name = \"-bad\"\n", `ferry.toml:2: delivery.ehlo_name: want a host name like "relay.example.com", got "-bad" (a label starts or ends with '-')`},
		{"smarthost port", "[delivery]\nsmarthost = \"[mail.example.com]:smtp\"\n", `ferry.toml:2: delivery.smarthost: ` + wantNH + `, got "[mail.example.com]:smtp" (port "smtp" is not a number from 1 to 65535)`},
		{"smarthost bracket", "[delivery]\nsmarthost = \"[mail.example.com:25\"\n", `ferry.toml:2: delivery.smarthost: ` + wantNH + `, got "[mail.example.com:25" (missing ']')`},
		{"tls ca file type", "[delivery]\ntls_ca_file = [\"/ca.pem\"]\n", `ferry.toml:2: delivery.tls_ca_file: want a file or directory path, got an array`},
		{"delivery timeout", "[delivery.timeouts]\nconnect = \"30\"\n", `ferry.toml:2: delivery.timeouts.connect: ` + wantDur + `, got "30"`},
		{"route without domain", "[[route]]\nnexthop = \"[10.0.0.1]:25\"\n", `ferry.toml:1: route: missing domain; ` + wantDom},
		{"route domain", "[[route]]\ndomain = \"*.example.com\"\n", `ferry.toml:2: route.domain: ` + wantDom + `, got "*.example.com" ("*" is not allowed; use letters, digits, '-' and A-labels (xn--…))`},
		{"route duplicate", "[[route]]\ndomain = \"example.com\"\n[[route]]\ndomain = \"EXAMPLE.com\"\n", `ferry.toml:4: route.domain: want each domain in one route, got "example.com" again (first on line 2)`},
		{"route nexthop list", "[[route]]\ndomain = \"*\"\nnexthop = \"a.example,,b.example\"\n", `ferry.toml:3: route.nexthop: ` + wantNH + `, got "a.example,,b.example" (empty next hop)`},
		{"route nexthop ipv6", "[[route]]\ndomain = \"*\"\nnexthop = \"2001:db8::1:25\"\n", `ferry.toml:3: route.nexthop: ` + wantNH + `, got "2001:db8::1:25" (write an IPv6 address in brackets, e.g. [2001:db8::1]:25)`},
		{"route eightbit", "[[route]]\ndomain = \"*\"\neightbit = \"drop\"\n", `ferry.toml:3: route.eightbit: want "convert" or "bounce", got "drop"`},
		{"route dkim", "[[route]]\ndomain = \"*\"\ndkim_signed = true\n", `ferry.toml:3: route.dkim_signed: want "convert", "bounce" or "arc", got true`},
		{"route tls", "[[route]]\ndomain = \"*\"\ntls = \"yes\"\n", `ferry.toml:3: route.tls: want "none", "may", "required", "dane" or "dane-only", got "yes"`},
		{"route dane on an IP next hop", "[delivery]\ndnssec_resolver = \"127.0.0.1\"\n\n[[route]]\ndomain = \"*\"\nnexthop = \"relay.example, [192.0.2.1]:25\"\ntls = \"dane\"\n",
			`ferry.toml:7: route.tls: want next hops named by host name with tls = "dane" (TLSA records are found at _PORT._tcp.HOST, RFC 7672 §2.2), got [192.0.2.1]:25 in nexthop (an IP address has no name)`},
		{"route dane-only on an IPv6 next hop", "[delivery]\ndnssec_resolver = \"127.0.0.1\"\n[[route]]\ndomain = \"x.example\"\ntls = \"dane-only\"\nnexthop = \"[ipv6:2001:db8::1]:587\"\n",
			`ferry.toml:5: route.tls: want next hops named by host name with tls = "dane-only" (TLSA records are found at _PORT._tcp.HOST, RFC 7672 §2.2), got [2001:db8::1]:587 in nexthop (an IP address has no name)`},
		{"route dane on an IP smart host", "[delivery]\nsmarthost = \"[192.0.2.1]\"\n[[route]]\ndomain = \"x.example\"\ntls = \"dane\"\n",
			`ferry.toml:5: route.tls: want next hops named by host name with tls = "dane" (TLSA records are found at _PORT._tcp.HOST, RFC 7672 §2.2), got [192.0.2.1]:25 in delivery.smarthost (an IP address has no name)`},
		{"route dane-only without a validating resolver", "[[route]]\ndomain = \"*\"\nnexthop = \"[relay.example]:587\"\ntls = \"dane-only\"\n",
			`ferry.toml:4: route.tls: want delivery.dnssec_resolver (a validating resolver) with tls = "dane-only", got none (no TLSA record could be known to be DNSSEC-secure, so all its mail would wait)`},
		{"route auth half", "[[route]]\ndomain = \"*\"\nauth_user = \"u\"\n", `ferry.toml:3: route.auth_user: want auth_user and auth_password_file together, got only one`},
		{"route auth in clear", "[[route]]\ndomain = \"*\"\nauth_user = \"u\"\nauth_password_file = \"/p\"\ntls = \"none\"\n", `ferry.toml:5: route.tls: want "may" or "required" with auth_user (no password in clear), got "none"`},
		{"route discard", "[[route]]\ndomain = \"*\"\ndiscard_keywords = [\"STARTTLS\", \"X\"]\n", `ferry.toml:3: route.discard_keywords: ` + wantKW + `, got "X"`},
		{"route max connections", "[[route]]\ndomain = \"*\"\nmax_connections = -1\n", `ferry.toml:3: route.max_connections: want a whole number (0: queue.hop_concurrency), got -1`},
		{"route inline table", "route = [{domain = \"*\", tls = \"maybe\"}]\n", `ferry.toml:1: route.tls: want "none", "may", "required", "dane" or "dane-only", got "maybe"`},
		{"route element not table", "route = [1]\n", `ferry.toml:1: route: want a table, got 1`},
		{"log format", "[log]\nformat = \"xml\"\n", `ferry.toml:2: log.format: want "text" or "json", got "xml"`},
		{"admin address", "[admin]\naddress = \"8025\"\n", `ferry.toml:2: admin.address: want an address like "127.0.0.1:8025", an absolute Unix socket path, or "off", got "8025" (no port (or give an absolute path for a Unix socket))`},
		{"admin address empty", "[admin]\naddress = \"\"\n", `ferry.toml:2: admin.address: want an address like "127.0.0.1:8025", an absolute Unix socket path, or "off", got ""`},
		{"admin TCP without token", "[admin]\n\naddress = \"127.0.0.1:8025\"\n", `ferry.toml:3: admin.address: want admin.token_file with a TCP admin address (the TCP admin API requires a bearer token), got "127.0.0.1:8025" without one`},
		{"multi-line string skipped", "[log]\nfile = \"\"\"\nlevel = 1\n\"\"\"\nlevel = \"x\"\n", `ferry.toml:5: log.level: want "debug", "info", "warn" or "error", got "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("ferry.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n  %s\nwant\n  %s", err, tc.want)
			}
		})
	}
}
