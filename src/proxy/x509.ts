// @peculiar/x509 registers its algorithms in a tsyringe container when it loads, and tsyringe throws at load time
// unless a Reflect metadata polyfill is installed (its @injectable() reads "design:paramtypes"). ESM evaluates a
// module's imports in order, so importing the polyfill first, here, is enough; every module of ours that needs
// X.509 imports this file rather than '@peculiar/x509' itself.
import 'reflect-metadata';

export * from '@peculiar/x509';
