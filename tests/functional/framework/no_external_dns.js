'use strict';

// Preloaded into bcoin by the test framework (node --require this file).
//
// A listening bcoin asks public DNS resolvers for the machine's external address at start-up.
// Tests must never send traffic past this machine, so in this process every DNS resolver query
// fails at once, before any packet is sent. Name lookups through the system (dns.lookup, which
// reads /etc/hosts for "localhost") still work.

const dns = require('dns');

function refuse(...args) {
  const callback = args[args.length - 1];
  const err = new Error('DNS queries are disabled in peercash tests');
  err.code = 'ECONNREFUSED';
  if (typeof callback === 'function')
    process.nextTick(callback, err);
  return undefined;
}

const methods = [
  'resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCaa', 'resolveCname',
  'resolveMx', 'resolveNaptr', 'resolveNs', 'resolvePtr', 'resolveSoa', 'resolveSrv',
  'resolveTxt', 'reverse'
];

for (const name of methods) {
  dns[name] = refuse;
  dns.Resolver.prototype[name] = refuse;
  if (dns.promises) {
    const fail = async () => { throw Object.assign(new Error('DNS disabled'), {code: 'ECONNREFUSED'}); };
    dns.promises[name] = fail;
    dns.promises.Resolver.prototype[name] = fail;
  }
}
