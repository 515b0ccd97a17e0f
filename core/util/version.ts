/** The version of Cofre that wrote a manifest (and that `cofre --version` prints). */
export const COFRE_VERSION = '0.1.0';
