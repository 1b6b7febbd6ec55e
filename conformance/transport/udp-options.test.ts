/**
 * Transport settings from the environment (runtime/transport/udp-options.ts): accepted forms,
 * and every bad value is MCCACHE_ERR_INVALID_OPTION naming the variable (STYLE.md rule 4:
 * assert codes and names, not wording).
 */
import { expect } from 'chai';
import { ErrorCode, McCacheError } from '../../runtime/errors';
import { resolveTransportOptions, TRANSPORT_DEFAULTS, transportOptionsFromEnv } from '../../runtime/transport/udp-options';
import { UdpDriver } from '../../runtime/transport/udp-driver';

function thrown(fn: () => unknown): McCacheError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(McCacheError);
    return err as McCacheError;
  }
  expect.fail('expected a McCacheError');
}

describe('transport/udp-options: environment', () => {
  it('gives nothing for an empty environment, and the production defaults resolve to 224.0.0.3:4000, TTL 1', () => {
    expect(transportOptionsFromEnv({})).to.deep.equal({});
    const o = resolveTransportOptions({}, {});
    expect(o).to.deep.equal(TRANSPORT_DEFAULTS);
    expect([o.group, o.port, o.multicastHops, o.interfaceAddress]).to.deep.equal(['224.0.0.3', 4000, 1, undefined]);
  });

  it('reads MCCACHE_MULTICAST_IP as addr or addr:port', () => {
    expect(transportOptionsFromEnv({ MCCACHE_MULTICAST_IP: '239.255.1.2' })).to.deep.equal({ group: '239.255.1.2' });
    expect(transportOptionsFromEnv({ MCCACHE_MULTICAST_IP: '224.0.0.3:4000' })).to.deep.equal({ group: '224.0.0.3', port: 4000 });
    expect(transportOptionsFromEnv({ MCCACHE_MULTICAST_IP: ' 239.255.255.255:65535 ' })).to.deep.equal({ group: '239.255.255.255', port: 65535 });
  });

  it('reads MCCACHE_MULTICAST_HOPS, where 0 means host-local (127.0.0.1, TTL 0, loopback)', () => {
    expect(transportOptionsFromEnv({ MCCACHE_MULTICAST_HOPS: '3' })).to.deep.equal({ multicastHops: 3 });
    expect(transportOptionsFromEnv({ MCCACHE_MULTICAST_HOPS: '0' }))
      .to.deep.equal({ multicastHops: 0, interfaceAddress: '127.0.0.1', loopback: true });
  });

  it('reads MCCACHE_MONKEY_TANTRUM as a percentage 0..99', () => {
    expect(transportOptionsFromEnv({ MCCACHE_MONKEY_TANTRUM: '0' })).to.deep.equal({ monkeyTantrum: 0 });
    expect(transportOptionsFromEnv({ MCCACHE_MONKEY_TANTRUM: '99' })).to.deep.equal({ monkeyTantrum: 99 });
  });

  const bad: Array<[string, string]> = [
    ['MCCACHE_MULTICAST_IP', '10.0.0.1'],
    ['MCCACHE_MULTICAST_IP', '223.255.255.255'],
    ['MCCACHE_MULTICAST_IP', '240.0.0.1'],
    ['MCCACHE_MULTICAST_IP', '224.0.0'],
    ['MCCACHE_MULTICAST_IP', 'mcast.example'],
    ['MCCACHE_MULTICAST_IP', '224.0.0.3:0'],
    ['MCCACHE_MULTICAST_IP', '224.0.0.3:65536'],
    ['MCCACHE_MULTICAST_IP', '224.0.0.3:'],
    ['MCCACHE_MULTICAST_IP', '224.0.0.3:40x'],
    ['MCCACHE_MULTICAST_IP', '224.0.0.3:4000:1'],
    ['MCCACHE_MULTICAST_HOPS', '-1'],
    ['MCCACHE_MULTICAST_HOPS', '256'],
    ['MCCACHE_MULTICAST_HOPS', '1.5'],
    ['MCCACHE_MULTICAST_HOPS', 'one'],
    ['MCCACHE_MONKEY_TANTRUM', '100'],
    ['MCCACHE_MONKEY_TANTRUM', '-5'],
    ['MCCACHE_MONKEY_TANTRUM', '10%'],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}=${JSON.stringify(value)} with MCCACHE_ERR_INVALID_OPTION naming the variable and the range`, () => {
      const err = thrown(() => transportOptionsFromEnv({ [name]: value }));
      expect(err.code).to.equal(ErrorCode.INVALID_OPTION);
      expect(err.message).to.contain(name);
      expect(err.message).to.match(/\d+\.\.\d+|224\.0\.0\.0/);
    });
  }
});

describe('transport/udp-options: options beat environment beat defaults', () => {
  it('lets options override the environment', () => {
    const env = { MCCACHE_MULTICAST_IP: '239.1.2.3:5000', MCCACHE_MONKEY_TANTRUM: '20' };
    const o = resolveTransportOptions({ port: 6000, monkeyTantrum: 0 }, env);
    expect([o.group, o.port, o.monkeyTantrum]).to.deep.equal(['239.1.2.3', 6000, 0]);
  });

  it('ties the host-local interface to the hop count that wins', () => {
    expect(resolveTransportOptions({ multicastHops: 0 }, {}).interfaceAddress).to.equal('127.0.0.1');
    expect(resolveTransportOptions({ multicastHops: 2 }, { MCCACHE_MULTICAST_HOPS: '0' }).interfaceAddress).to.equal(undefined);
    expect(resolveTransportOptions({ multicastHops: 0, interfaceAddress: '127.0.0.2' }, {}).interfaceAddress).to.equal('127.0.0.2');
  });

  it('validates options the same way, naming the option', () => {
    for (const [name, value] of [['group', '10.1.1.1'], ['port', 0], ['multicastHops', 300], ['monkeyTantrum', 100],
      ['interfaceAddress', 'eth0'], ['recvBufferSize', -1], ['loopback', 'yes']] as const) {
      const err = thrown(() => resolveTransportOptions({ [name]: value } as never, {}));
      expect(err.code, name).to.equal(ErrorCode.INVALID_OPTION);
      expect(err.message).to.match(new RegExp(`^${name}:`));
    }
  });

  it('reaches UdpDriver, which fails at construction, before any socket exists', () => {
    const err = thrown(() => new UdpDriver({ env: { MCCACHE_MULTICAST_HOPS: '999' } }));
    expect(err.code).to.equal(ErrorCode.INVALID_OPTION);
    expect(err.message).to.contain('MCCACHE_MULTICAST_HOPS');
  });
});
