// @peculiar/x509 for the tests: an independent X.509 parser and generator to check the proxy's own DER
// (src/proxy/certificate-der.ts) and to make test PKIs. It registers its algorithms in a tsyringe container when it
// loads, and tsyringe throws at load time unless a Reflect metadata polyfill is installed (its @injectable() reads
// "design:paramtypes"). ESM evaluates a module's imports in order, so importing the polyfill first, here, is
// enough; every test module that needs X.509 imports this file rather than '@peculiar/x509' itself.
import 'reflect-metadata';

export * from '@peculiar/x509';
